"""``jaxrnn.fit``: the composition of a batch source, the block of pure updates, and callbacks."""

import functools
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import check_count, prng_key
from jaxrnn._cpu_devices import cores_left_idle
from jaxrnn.data.arrays import Data, as_data, packed_kind
from jaxrnn.data.batches import Batches, batch_indices
from jaxrnn.data.host import HostBatches
from jaxrnn.data.tbptt import TBPTT
from jaxrnn.train import arguments, compilation
from jaxrnn.train import callbacks as cb
from jaxrnn.train.devices import Placement, rows_per_device, widest_cell
from jaxrnn.train.evaluation import Evaluator
from jaxrnn.train.feeds import OnDevice, Streamed, stream_block
from jaxrnn.train.history import History
from jaxrnn.train.lengths import padded, remember, warn_if_missing
from jaxrnn.train.losses import LossFn
from jaxrnn.train.metrics import finish
from jaxrnn.train.objective import Loss, Objective, objective_of
from jaxrnn.train.plans import Sequences, Windows
from jaxrnn.train.protocol import Forward, Stateful, training_forward
from jaxrnn.train.state import TrainState
from jaxrnn.train.step import Block, Update

BLOCK = 32
"""Default updates per device call: the host's ~1 ms per call is then a few percent of
even the smallest models' updates (benchmarks/results/fit_throughput/results.md)."""


def default_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """Clip by global norm 1.0, then Adam; the learning rate is injected so fit can record it.

    Args:
        learning_rate: Adam's step size.

    Returns:
        The Optax transformation ``fit`` uses when given none.
    """
    return optax.chain(
        optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    )


@functools.cache
def _default_optimizer() -> optax.GradientTransformation:
    """The ``default_optimizer()`` of every fit without ``optimizer=``: one object, so that a
    later fit of the same model and shapes finds its block of updates compiled."""
    return default_optimizer()


def fit(
    model: eqx.Module,
    data,
    *,
    key: PRNGKeyArray,
    loss: str | LossFn | Loss = "mse",
    optimizer: optax.GradientTransformation | None = None,
    epochs: int = 1,
    validation=None,
    callbacks: Sequence[cb.Callback] = (),
    verbose: bool = True,
    forward: Forward | None = None,
    steps_per_execution: int | None = None,
    placement: Placement | None = None,
) -> tuple[eqx.Module, History]:
    """Train ``model`` on ``data`` with Optax; returns ``(trained model, history)``.

    Args:
        model: a jaxrnn model (``ManyToOne``, ``ManyToMany``, ...) or one of your own
            (``forward=``).
        data: where the batches come from (the data guide): ``Batches(arrays,
            batch_size, shuffle=)``, arrays placed on the device whole and batched there,
            in a new order every epoch from ``key``; plain ``(inputs, targets[, lengths])``
            arrays or packed rows for ``Batches(data)`` (32 a batch, shuffled);
            ``TBPTT(batches, k1, k2)``, the same trained by truncated BPTT; or
            ``HostBatches(loader)``, batches made on the host, in the loader's order.
        key: drives shuffling and dropout: the same key gives the same run.
        loss: a ``jaxrnn.Loss`` (the loss function, the steps it is on, its reduction,
            the metrics beside it), or a loss name or function for ``Loss(loss)``: on
            logits, "mse", "cross_entropy" (class ids), "binary_cross_entropy" or
            ``f(logits, targets) -> per-position loss``; steps past ``lengths`` are
            masked. Validation reports the same; give ``evaluate`` the same object.
        optimizer: any Optax transformation; default ``default_optimizer()``. A later
            fit given the same object (or none) reuses the compiled updates of an earlier
            one with the same model architecture, shapes, loss and batch size.
        epochs: passes over the data.
        validation: arrays or packed rows like the data's: ``val_loss`` and
            ``val_<metric>`` each epoch.
        callbacks: ``jaxrnn.callbacks`` objects (``EarlyStopping``, ``ModelCheckpoint``,
            ``CSVLogger``, ...; ``StopOnNonFinite(10)`` and ``WarnOnLossRise(10)`` are
            added unless given).
        verbose: a progress bar on a terminal, one line per epoch otherwise (unless the
            callbacks hold a ``ProgressBar`` or ``EpochPrinter``).
        forward: ``forward(model, inputs, targets, lengths, key) -> logits`` for a model
            outside the training protocol.
        steps_per_execution: updates per device call (default up to 32); callbacks and
            the bar act between calls.
        placement: where the data and the model live (``Placement``); default
            ``Placement.for_batch``: each batch split by rows across as many devices as
            pay for it (rows x hidden units of the widest cell x steps of an update, at
            least 28,672 a device: at T 28, 8 rows at H 128, 16 at H 64); on a CPU
            jaxrnn makes one device per core (``jaxrnn/_cpu_devices.py``).
            ``Placement(devices=1)`` for one.

    Returns:
        model: The trained model.
        history: Its ``History``: per update the loss, the gradient norm before clipping,
            the learning rate and whether the update was applied or skipped as
            non-finite; per epoch the metrics, seconds and steps; why training stopped
            early.

    The training guide (docs/guides/training.md) says what each choice does and why.
    """
    started, compiled = time.perf_counter(), compilation.seconds()
    config = _checked(
        model, data, key=key, loss=loss, optimizer=optimizer, epochs=epochs, validation=validation,
        callbacks=callbacks, verbose=verbose, forward=forward, steps_per_execution=steps_per_execution,
        placement=placement,
    )  # fmt: skip
    setup = _setup(config)
    setup.run.history.setup_seconds = time.perf_counter() - started  # this run's, after a resume too
    return _loop(setup, epochs, compiled)


class _Setup(NamedTuple):
    """What the loop needs, built and checked by ``_setup``."""

    run: cb.Run
    feed: OnDevice | Streamed
    block: Block
    callbacks: list
    objective: object
    evaluator: Evaluator | None
    val_data: object
    devices: Placement


class _Config(NamedTuple):
    """fit's arguments, checked: what ``_setup`` builds the run from."""

    model: eqx.Module
    source: Batches | TBPTT | HostBatches
    data: Data  # the arrays (a stream's first batch)
    validation: Data | None
    key: PRNGKeyArray
    objective: Objective
    optimizer: optax.GradientTransformation
    epochs: int
    callbacks: list
    forward: Forward
    steps_per_execution: int | None
    placement: Placement

    @property
    def stream(self) -> HostBatches | None:
        return self.source if isinstance(self.source, HostBatches) else None

    @property
    def windows(self) -> tuple[int, int] | None:
        return (self.source.k1, self.source.k2) if isinstance(self.source, TBPTT) else None


def _checked(model, data, *, key, loss, optimizer, epochs, validation, callbacks, verbose, forward,
             steps_per_execution, placement) -> _Config:  # fmt: skip
    """fit's arguments checked, each error naming its argument, before any work."""
    source = data if isinstance(data, Batches | TBPTT | HostBatches) else Batches(data)
    stream = source if isinstance(source, HostBatches) else None
    if stream is not None:
        stream.check_fresh()
    packed = source.packed if isinstance(source, Batches) else source.batches.packed if stream is None else None
    if validation is not None and packed_kind(validation) not in (None, packed):
        raise ValueError(
            f"validation: packed rows with targets per {packed_kind(validation)[:-1]}, but data's are per "
            f"{packed[:-1] if packed else 'padded sequence'}: pack both the same way"
        )
    if isinstance(validation, Batches | TBPTT | HostBatches):
        raise TypeError(
            f"validation must be arrays (inputs, targets[, lengths]) or packed rows, got a {type(validation).__name__}"
        )
    data = stream.first() if stream is not None else source.data
    val = None if validation is None else as_data(validation, "validation")
    objective = objective_of(loss, packed or packed_kind(validation))
    warn_if_missing(model, data, "data", stacklevel=5)
    if val is not None:
        warn_if_missing(model, val, "validation", trained_with=padded(data), stacklevel=5)
    check_count(epochs, "epochs", 0)
    check_count(steps_per_execution, "steps_per_execution", 1, allow_none=True)
    if stream is not None and stream.one_shot and epochs > 1:
        raise ValueError(
            f"data: a one-shot iterator (a generator) can be read once, not for epochs={epochs}: pass HostBatches "
            "a re-iterable (a list, a DataLoader) or a function that returns a new iterator"
        )
    callbacks = _callbacks(callbacks, verbose)
    run_forward = training_forward(model, forward)
    if isinstance(source, TBPTT) and (forward is not None or not isinstance(model, Stateful)):
        raise ValueError(
            "TBPTT needs a ManyToMany (a model that carries its state across windows, without forward=), "
            f"got a {type(model).__name__}" + (" with forward=" if forward is not None else "")
        )
    optimizer = _default_optimizer() if optimizer is None else optimizer
    model = remember(model, data)  # padded data with lengths: the model records it, in its checkpoints too
    arguments.optimizer(optimizer, eqx.filter(model, eqx.is_inexact_array))
    key = prng_key(key)
    if placement is not None and not isinstance(placement, Placement):
        raise TypeError(f"placement must be a jaxrnn.Placement, got {type(placement).__name__}")
    if placement is None:
        batch = data.size if stream is not None else min(_batches(source).batch_size, data.size)
        steps = source.k2 if isinstance(source, TBPTT) else data.inputs.shape[1]  # the steps of an update
        hidden = widest_cell(model)
        placement = Placement.for_batch(batch, hidden, steps)
        if batch >= 2 * rows_per_device(hidden, steps) and (idle := cores_left_idle()) is not None:
            warnings.warn(idle, RuntimeWarning, stacklevel=3)  # a split would pay, had JAX not started first
    if stream is not None and placement.processes > 1:
        raise ValueError("HostBatches with several processes: pass each process's shard as arrays")
    return _Config(
        model, source, data, val, key, objective, optimizer, epochs, callbacks, run_forward, steps_per_execution,
        placement,
    )  # fmt: skip


def _setup(config: _Config) -> _Setup:
    """The pieces, from the checked arguments: placement, plan, feed, block, the run."""
    model, data, val, stream, ks, devices = (
        config.model, config.data, config.validation, config.stream, config.windows, config.placement,
    )  # fmt: skip
    callbacks, objective = config.callbacks, config.objective
    n_examples = data.size if stream is not None else devices.global_size(data, "data")
    # a batch_size above the data is one smaller batch, as in Keras and PyTorch; a stream's batches are its own
    batch_size = n_examples if stream is not None else min(_batches(config.source).batch_size, n_examples)
    rows = -(-batch_size // devices.n_dev) * devices.n_dev  # batch rows, padded to a multiple of the devices
    whole = Sequences(rows, config.forward, objective, devices.constrain)
    source = whole if ks is None else Windows(rows, data.inputs.shape[1], *ks, objective, devices.constrain)
    device_data = devices.data(source.device_data(data))
    val_data = None if val is None else devices.data(val)
    if val is not None:
        devices.global_size(val, "validation")
    key0 = jax.random.PRNGKey(0)
    idx = jax.ShapeDtypeStruct((rows,), np.int32)
    trace_source = lambda: jax.eval_shape(  # noqa: E731
        lambda m, d, i: source.loss(m, source.init_carry(m), d, i, 0, key0), model, device_data, idx
    )
    name = "data" if stream is None else "data: batch 0"  # a stream's first batch stands for the data
    arguments.data(model, data, name, whole, key=key0, trace=None if ks is None else trace_source)
    if val is not None:
        arguments.data(model, val, "validation", whole)
    lengths = devices.global_lengths(data, _steps(data))
    most = stream.length if stream is not None else -(-n_examples // batch_size) * (source.geometry.count if ks else 1)
    guard = next(c for c in callbacks if isinstance(c, cb.StopOnNonFinite))
    block = Block(
        Update(source, config.optimizer, devices.mesh),
        config.steps_per_execution or (min(BLOCK, most or BLOCK) if stream is None else stream_block(data)),
        guard.limit,
        devices,
    )
    evaluator = None
    if val is not None:
        evaluator = Evaluator(config.forward, objective, rows, devices)
    state = devices.state(TrainState.create(model, config.optimizer, source.init_carry(model), config.key))
    run = cb.Run(state, History(), config.epochs, callbacks, devices)
    limits = [config.epochs * most] if most is not None else []
    limits += [c.limit for c in callbacks if isinstance(c, cb.MaxSteps)]
    run.total_steps = min(limits) if limits else None  # None: a stream of unknown length
    for c in sorted(callbacks, key=lambda c: not isinstance(c, cb.ModelCheckpoint)):  # a resume first
        c.on_train_begin(run)
    run.restore_callbacks()  # after on_train_begin, where each callback forgot an earlier run
    if stream is not None:
        feed = Streamed(stream, rows, block.size, devices.data if devices.n_dev > 1 else jax.device_put)
    else:
        shuffle_key = jax.random.split(run.state.key)[0] if _batches(config.source).shuffle else None
        order = lambda epoch: batch_indices(n_examples, batch_size, shuffle_key, epoch)  # noqa: E731
        feed = OnDevice(source, device_data, order, lengths)
    return _Setup(run, feed, block, callbacks, objective, evaluator, val_data, devices)


def _batches(source: Batches | TBPTT) -> Batches:
    """The batching of arrays: a ``Batches`` itself, or the one a ``TBPTT`` cuts into windows."""
    return source if isinstance(source, Batches) else source.batches


def _loop(setup: _Setup, epochs: int, compiled: float) -> tuple[eqx.Module, History]:
    """The epochs: blocks of updates from the feed, callbacks between them, validation
    and the epoch's metrics at each end. ``compiled``: the process's compile seconds when
    fit began (the history keeps this run's)."""
    run, feed, block, callbacks = setup.run, setup.feed, setup.block, setup.callbacks
    stop = _first(None, [c.at_start(run) for c in callbacks])  # a resumed run that had stopped runs nothing
    first_step = run.step
    while run.epoch < epochs and stop is None:
        epoch, epoch_started = feed.epoch(run.epoch, run.update), time.perf_counter() - run.epoch_seconds
        run.epoch_updates = epoch.length
        while stop is None and not epoch.finished(run.update):
            n = min([block.size, *(b - run.step for c in callbacks if (b := c.boundary(run.step)))])
            started, taken = time.perf_counter(), epoch.take(run.update, n)
            if taken is None:
                break
            block_data, idx, window, real = taken
            run.state, out = block(run.state, block_data, idx, window)
            _record(run, out, real[: len(out.loss)])
            run.history.compile_seconds = compilation.seconds() - compiled
            now = time.perf_counter()
            run.epoch_seconds = now - epoch_started
            stop = _first(stop, [c.on_block_end(run, now - started) for c in callbacks])
        epoch.close()
        if epoch.finished(run.update):
            metrics = finish(run.epoch_sums, setup.objective.metrics)
            if setup.evaluator is not None:
                metrics.update({f"val_{k}": v for k, v in setup.evaluator(run.model, setup.val_data).items()})
            seconds = time.perf_counter() - epoch_started
            run.history.compile_seconds = compilation.seconds() - compiled  # validation's too
            run.history.epochs.append(metrics)
            run.history.epoch_seconds.append(seconds)
            run.history.epoch_steps.append(run.step)
            stop = _first(stop, [c.on_epoch_end(run, metrics, seconds) for c in callbacks])
            run.epoch, run.update, run.epoch_sums, run.epoch_seconds = run.epoch + 1, 0, {}, 0.0
    # the stop reason is this run's: a resumed run that ran to its end clears the one it resumed from
    run.history.stopped, run.history.stop_reason = (None, None) if stop is None else (stop.message, stop.kind)
    if stop is not None and stop.kind == "non_finite":
        run.warn(stop.message, stacklevel=4)
    elif run.step > first_step:
        _warn_if_mostly_skipped(run)
    for c in callbacks:
        c.on_train_end(run, stop)
    model = setup.devices.local(run.model)
    run.history.compile_seconds = compilation.seconds() - compiled
    return model, run.history


def _warn_if_mostly_skipped(run: cb.Run) -> None:
    """Warn, and say in the history, when more than half of the run's updates were skipped
    as non-finite (below StopOnNonFinite's limit, which stops and warns on its own)."""
    h = run.history
    if h.skipped * 2 <= h.steps:
        return
    what = "the model is untrained" if h.skipped == h.steps else "the model learnt from the rest only"
    run.warn(
        f"{h.skipped} of {h.steps} updates were skipped as non-finite (a NaN or inf in the loss, gradient or update; "
        f"the data or the learning rate?): {what}",
        stacklevel=4,
    )


def _first(stop, candidates):
    """The stop already set, else the first callback's that says stop (every callback still runs)."""
    found = [c for c in candidates if c is not None]
    return stop if stop is not None else (found[0] if found else None)


def _record(run: cb.Run, out, real: np.ndarray) -> None:
    """Add a block's per-update numbers to the history, the epoch sums and the position."""
    n = len(out.loss)
    run.history.record(out.loss, out.grad_norm, out.learning_rate, out.finite)
    for i in np.flatnonzero(out.finite):
        for name, (total, count) in out.sums.items():
            t0, c0 = run.epoch_sums.get(name, (0.0, 0.0))
            run.epoch_sums[name] = (t0 + float(total[i]), c0 + float(count[i]))
    run.step, run.update = run.step + n, run.update + n
    run.block_updates, run.block_sequences = n, int(real.sum())


def _steps(data) -> int:
    return data.inputs.shape[1] if data.inputs.ndim == 3 else 0


def _callbacks(callbacks: Sequence[cb.Callback], verbose: bool) -> list[cb.Callback]:
    """The user's callbacks, with the non-finite guard (``StopOnNonFinite(10)``) and the
    divergence warning (``WarnOnLossRise(10)``) unless one is given, and with ``verbose`` a
    display (a bar on a terminal, lines otherwise) unless one is given."""
    callbacks = list(callbacks)
    wrong = [c for c in callbacks if not isinstance(c, cb.Callback)]
    if wrong:
        raise TypeError(
            "callbacks must be jaxrnn.callbacks objects (EarlyStopping(5), ModelCheckpoint(path), ...; "
            f"a function f(step, metrics, model) goes in LambdaCallback(f)), got {wrong!r}"
        )
    twice = next((c for i, c in enumerate(callbacks) if any(c is d for d in callbacks[:i])), None)
    if twice is not None:
        raise ValueError(
            f"callbacks hold the same {type(twice).__name__} object twice: one object keeps one run's state; "
            "give it once (or two objects)"
        )
    guards = [c for c in callbacks if isinstance(c, cb.StopOnNonFinite)]
    if len(guards) > 1:
        raise ValueError(f"callbacks hold {len(guards)} StopOnNonFinite; give one")
    if not guards:
        callbacks.insert(0, cb.StopOnNonFinite())
    if not any(isinstance(c, cb.WarnOnLossRise) for c in callbacks):
        callbacks.append(cb.WarnOnLossRise())
    shown = any(isinstance(c, cb.ProgressBar | cb.EpochPrinter) for c in callbacks)
    if verbose and not shown:
        callbacks.append(_display())
    return callbacks


def _display() -> cb.Callback:
    """A bar when stderr is a terminal with a width and tqdm is installed, else one line per
    epoch (a terminal of zero columns, as some job runners give, would show no bar at all)."""
    if sys.stderr.isatty() and _columns() >= MIN_BAR_COLUMNS:
        try:
            return cb.ProgressBar()
        except ImportError:
            warnings.warn("no progress bar: pip install 'jaxrnn[progress]' for one", stacklevel=4)
    return cb.EpochPrinter()


MIN_BAR_COLUMNS = 20
"""Below this terminal width the bar has no room: fit prints a line per epoch instead."""


def _columns() -> int:
    """The width of the terminal on stderr (0 when it reports none)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0
