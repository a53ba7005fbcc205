"""The gradient view: ||dL/ds_k|| for every k in one backward pass, and a memory length."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import Cell, State
from jaxrnn.layers.resets import restart
from jaxrnn.spectra.jacobians import as_cell, check_resets, check_trajectory, flat_step, initial_state


def last_step_loss(hs: Float[Array, "T H"]) -> Float[Array, ""]:
    """The default loss of ``state_gradients``: the sum of the last output, L = sum_i h_T[i]
    (a loss read at the last step only, as a many-to-one model's is; with every weight
    of the readout 1).

    Args:
        hs: the outputs h_1..h_T (T, H).

    Returns:
        The scalar L.
    """
    return jnp.sum(hs[-1])


def state_gradients(
    cell: Cell,
    xs: Float[Array, "T F"],
    state0: State | None = None,
    loss: Callable[[Array], Array] = last_step_loss,
    *,
    resets: Bool[Array, " T"] | None = None,
) -> Float[Array, "T n"]:
    """``dL/ds_k`` for k = 1..T (row k-1), flattened states, in one backward pass.

    A perturbation e_k, zero, is added to each state, s_k = step(s_{k-1}, x_k) + e_k;
    then dL/de_k = dL/ds_k, the total derivative through all later steps.

    Args:
        cell: the cell.
        xs: the inputs (T, F).
        state0: s_0 (None: the zero state).
        loss: maps the outputs h_1..h_T (T, H) to a scalar; default ``last_step_loss``,
            L = sum(h_T).
        resets: (T,) bool: steps where it is True start from ``state0``: no gradient flows
            back across a segment's start.

    Returns:
        (T, n): row k - 1 is dL/ds_k.
    """
    cell = as_cell(cell)
    check_trajectory(cell, xs)
    resets = check_resets(resets, xs.shape[0])
    state0 = initial_state(cell, state0)
    step, s0, unravel = flat_step(cell, state0)
    xw = cell.project(xs)
    flags = jnp.zeros(xs.shape[0], bool) if resets is None else resets

    def loss_of(eps):
        def body(s, inp):
            x_t, e_t, reset = inp
            s = step(restart(s, reset, s0), x_t) + e_t
            return s, cell.output(unravel(s))

        _, hs = jax.lax.scan(body, s0, (xw, eps, flags))
        return loss(hs)

    return jax.grad(loss_of)(jnp.zeros((xs.shape[0], s0.shape[0]), s0.dtype))


def gradient_norms_vs_lag(grads: Float[Array, "T n"], hidden_size: int | None = None) -> Float[Array, " T"]:
    """``||dL/ds_{T-lag}||`` for lag = 0..T-1 (reversed rows of ``state_gradients``).

    Args:
        grads: ``state_gradients``' (T, n).
        hidden_size: H: measure only the h part (the first H entries) of each state; None:
            the whole state.

    Returns:
        (T,): entry ``lag`` is the norm at step T - lag.
    """
    g = grads if hidden_size is None else grads[:, :hidden_size]
    return jnp.linalg.norm(g, axis=-1)[::-1]


class MemoryLength(NamedTuple):
    """``lag``: the first lag at which the gradient norm is below the threshold. When it
    never is, ``at_least`` is True and ``lag`` is the number of lags measured (T): the
    memory reaches at least that far, and the sequence was too short to say more."""

    lag: int
    at_least: bool

    def __str__(self) -> str:
        return f">= {self.lag}" if self.at_least else str(self.lag)


def memory_length(norms_vs_lag: Float[Array, " T"], ratio: float = 1e-3) -> MemoryLength:
    """The first lag at which the gradient norm falls below ``ratio`` times its value at
    lag 0, or "at least T" (``MemoryLength.at_least``) if it never does.

    Args:
        norms_vs_lag: ``gradient_norms_vs_lag``'s (T,).
        ratio: the fraction of the lag-0 norm that counts as gone.

    Returns:
        A ``MemoryLength``: ``lag`` and ``at_least``.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must lie in (0, 1), got {ratio}")
    below = jnp.asarray(norms_vs_lag) < ratio * norms_vs_lag[0]
    if bool(below.any()):
        return MemoryLength(int(jnp.argmax(below)), False)
    return MemoryLength(int(norms_vs_lag.shape[0]), True)
