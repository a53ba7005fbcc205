"""The pure update and the block of updates run in one device call.

``Update``, ``(state, data, idx, window) -> (state, metrics)``, is one optimizer step on
the batch the source gathers at ``idx``. ``Block`` runs up to K of them in one
``lax.scan`` (Keras's ``steps_per_execution``): the host launches one call and reads
its per-update metrics once, instead of synchronising after every update. Every block
has the same K, padded with inactive slots (a ``lax.cond`` that skips the update), so
the update compiles once and an update computes the same bits wherever a block
boundary falls: a checkpoint may land on any update and a resumed run stays
bit-identical.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Bool, Float

from jaxrnn.train import cpu_options, data_parallel
from jaxrnn.train.devices import Placement
from jaxrnn.train.objective import Sums
from jaxrnn.train.state import TrainState, all_finite, learning_rate


class UpdateMetrics(NamedTuple):
    """One update's numbers: loss, global gradient norm before clipping, learning rate,
    whether it was applied (finite), and the sums behind the epoch's metrics."""

    loss: Float[Array, ""]
    grad_norm: Float[Array, ""]
    learning_rate: Float[Array, ""]
    finite: Bool[Array, ""]
    sums: Sums


class Update(NamedTuple):
    """One optimizer step on the batch ``source`` gathers at ``idx``:
    ``update(state, data, idx, window) -> (state, metrics)``.

    ``source`` (``plans.Sequences`` or ``plans.Windows``) gives
    ``loss(model, carry, data, idx, window, key) -> (value, (carry, sums))``, which is
    ``on_batch`` of its ``batch``. With a ``mesh`` (several devices) each device computes
    its rows' share of the gradient (``train.data_parallel``). An update is a
    value, compared and hashed by its source and optimizer, so that a later ``fit`` with
    equal ones (the same loss, batch rows and placement, the same optimizer object) finds
    the block of updates already compiled for the same model architecture and shapes.

    The non-finite guard: an update whose loss, gradient, new parameters or new optimizer
    state hold a NaN or inf is not applied (state kept, ``skipped`` counted), so a NaN
    never reaches the parameters whatever its source (data, learning rate, optimizer
    state). ``optax.apply_if_finite`` checks the gradients only, and applies updates
    again after its error limit, hence this guard of our own.
    """

    source: object
    optimizer: optax.GradientTransformation
    mesh: Mesh | None = None

    def __call__(self, state: TrainState, data, idx, window) -> tuple[TrainState, UpdateMetrics]:
        key = jax.random.fold_in(jax.random.split(state.key)[1], state.step)  # [0] shuffles
        if self.mesh is None:
            grad_fn = eqx.filter_value_and_grad(self.source.loss, has_aux=True)
            (value, (carry, sums)), grads = grad_fn(state.model, state.carry, data, idx, window, key)
        else:
            batch = self.source.batch(data, idx, window)
            (value, (carry, sums)), grads = data_parallel.value_and_grad(
                self.source.on_batch, self.mesh, state.model, state.carry, batch, key
            )
        grad_norm = optax.tree.norm(grads)
        params = eqx.filter(state.model, eqx.is_inexact_array)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        finite = jnp.isfinite(value) & jnp.isfinite(grad_norm) & all_finite(model) & all_finite(opt_state)
        pick = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
        dynamic, static = eqx.partition(model, eqx.is_array)
        model = eqx.combine(pick(dynamic, eqx.filter(state.model, eqx.is_array)), static)
        new = TrainState(
            model,
            pick(opt_state, state.opt_state),
            carry,  # the state the forward pass reached, applied or not (the source keeps it finite)
            state.key,
            state.step + 1,
            state.skipped + (~finite).astype(jnp.int32),
        )
        return new, UpdateMetrics(value, grad_norm, learning_rate(new.opt_state), finite, sums)


class Block:
    """Up to ``size`` updates in one compiled call; updates stop early (inactive) once more
    than ``max_nonfinite`` have been skipped, so that limit acts on the exact update.

    ``placement`` (``train.devices.Placement``) constrains the state and metrics it
    returns, places the plan's arrays and brings the metrics back to the host. The call
    is compiled once per process for equal updates, limits and placements (``_run``).
    """

    def __init__(self, update: Update, size: int, max_nonfinite: int, placement: Placement):
        self.size, self.placement = size, placement
        self.spec = BlockSpec(update, max_nonfinite, placement.replicate)

    def __call__(self, state: TrainState, data, idx: np.ndarray, window: np.ndarray):
        """Run the updates at ``idx`` (n, rows) / ``window`` (n,), n <= size.

        Returns the new state and, on the host, the metrics of the updates that ran.
        """
        n = len(window)
        pad = self.size - n
        active = np.arange(self.size) < n
        idx = np.concatenate([idx, np.full((pad, idx.shape[1]), -1, idx.dtype)])
        window = np.concatenate([window, np.zeros(pad, window.dtype)])
        state, metrics, ran = _run(self.spec, state, data, *self.placement.state((idx, window, active)))
        metrics, ran = self.placement.host((metrics, ran))
        return state, jax.tree.map(lambda a: a[ran], metrics)


class BlockSpec(NamedTuple):
    """What a block's program is compiled for besides its arrays: the update, the limit of
    skipped updates, and how its results are placed (all compared by value)."""

    update: Update
    max_nonfinite: int
    replicate: Callable


@cpu_options.filter_jit
def _run(spec: BlockSpec, state: TrainState, data, idx, window, active):
    """The block's ``lax.scan`` over its slots (a module-level function, so that its
    compilations are kept across ``fit`` calls, keyed by ``spec`` and the shapes)."""
    dynamic, static = eqx.partition(state, eqx.is_array)
    update = spec.update
    shapes = jax.eval_shape(lambda s: update(eqx.combine(s, static), data, idx[0], window[0])[1], dynamic)
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)

    def body(dynamic, slot):
        i, w, a = slot

        def run(d):
            new, metrics = update(eqx.combine(d, static), data, i, w)
            return eqx.filter(new, eqx.is_array), metrics

        go = a & (dynamic.skipped <= spec.max_nonfinite)
        dynamic, metrics = jax.lax.cond(go, run, lambda d: (d, zeros), dynamic)
        return dynamic, (metrics, go)

    dynamic, (metrics, ran) = jax.lax.scan(body, dynamic, (idx, window, active))
    dynamic, metrics, ran = jax.tree.map(spec.replicate, (dynamic, metrics, ran))
    return eqx.combine(dynamic, static), metrics, ran
