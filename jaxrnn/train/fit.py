"""``jaxrnn.fit``: the composition of a batch source, the block of pure updates, and hooks."""

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import prng_key
from jaxrnn.data import as_data, batch_indices
from jaxrnn.layers import with_remat
from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train import checks
from jaxrnn.train import hooks as hk
from jaxrnn.train import tbptt as tb
from jaxrnn.train.devices import Placement
from jaxrnn.train.evaluate import Evaluator, make_objective
from jaxrnn.train.history import History
from jaxrnn.train.losses import LossFn, resolve_loss
from jaxrnn.train.metrics import finish
from jaxrnn.train.protocol import Forward, Stateful, training_forward
from jaxrnn.train.sources import Sequences, Windows
from jaxrnn.train.state import TrainState
from jaxrnn.train.step import Block, make_update

Callback = Callable[[int, dict, eqx.Module], bool | None]
BLOCK = 32
"""Default updates per device call: the host's ~1 ms per call is then a few percent of
even the smallest models' updates (benchmarks/results/fit_throughput/results.md)."""


def default_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """Clip by global norm 1.0, then Adam; the learning rate is injected so fit can record it."""
    return optax.chain(
        optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    )


def fit(
    model: eqx.Module,
    data,
    *,
    key: PRNGKeyArray,
    loss: str | LossFn = "mse",
    loss_on: str = "all",
    reduction: str = "mean",
    optimizer: optax.GradientTransformation | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    shuffle: bool = True,
    validation=None,
    tbptt: int | tuple[int, int] | None = None,
    metrics: Sequence[str] | None = None,
    early_stopping: int | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | None = None,
    checkpoint_every: int | None = None,
    checkpoint_info: dict | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    max_nonfinite: int = 10,
    forward: Forward | None = None,
    remat: bool | None = None,
    progress: bool | None = None,
    log: str | None = None,
    steps_per_execution: int | None = None,
    shard: bool = True,
) -> tuple[eqx.Module, History]:
    """Train ``model`` on ``data = (inputs, targets[, lengths])``; returns ``(model, history)``.

    - **Batches**: shuffled every epoch from ``key``; the last partial batch is padded
      with weight-0 examples (every example is used once per epoch, one compilation).
      The data live on the device; batches are gathered there.
    - **Loss** on logits: 'mse', 'cross_entropy' (targets are class ids),
      'binary_cross_entropy' (sigmoid heads) or a callable ``(logits, targets) ->
      per-position loss``. Per-step outputs are masked by ``lengths`` (targets past a
      length are ignored, whatever they hold). ``loss_on='last'`` uses only each
      sequence's last valid step. ``reduction='mean'`` averages over every valid
      (sequence, step); ``'sum'`` sums over steps and averages over sequences.
    - **metrics**: names from 'accuracy', 'perplexity', 'bits_per_char' (default:
      accuracy for cross-entropy), reported per epoch for training and validation.
    - **Optimizer**: any Optax transformation; default ``default_optimizer()``. History
      records per update the loss, the global gradient norm before clipping and the
      learning rate (where ``optax.inject_hyperparams`` put it, schedules included; NaN
      otherwise).
    - **tbptt**: ``k`` or ``(k1, k2)`` for models that carry state (``ManyToMany``):
      one update per window, the state carried across windows (``jaxrnn.train.tbptt``).
    - **validation** data (same form): ``val_loss`` and ``val_<metric>`` each epoch.
      ``early_stopping=p`` stops after p epochs without a lower ``val_loss`` (else
      training loss) and returns the best model.
    - **callbacks** ``f(step, epoch_metrics, model)`` after each epoch; True stops.
    - **checkpoint** path: saved atomically every ``checkpoint_every`` updates and at the
      end, with the architecture (``jaxrnn.load`` reads its model); ``resume=True``
      continues from it bit for bit on CPU. ``checkpoint_info`` (JSON) is stored with it.
      ``max_steps`` stops after that many updates in total.
    - **Non-finite** loss, gradient or update: the update is not applied
      (``history.finite``); after ``max_nonfinite`` of them training stops with a warning.
    - **steps_per_execution**: updates per device call (default 32, fewer for short
      epochs); metrics are read, hooks run and the progress bar moves once per call.
    - **progress**: a tqdm bar and a line per epoch (default: when stderr is a terminal);
      **log**: a CSV file with one row per epoch.
    - **Devices**: with several devices (and ``shard=True``) each batch is split across
      them; the result equals one device's up to float rounding.
    - **remat**: True/False sets remat on every recurrent layer (chunked checkpointing, about
      sqrt(T) steps a chunk: the lowest-memory mode, one more forward pass).
    - **key** drives shuffling and dropout: the same key gives the same run.
    """
    # ---- every check before any work ---------------------------------------------------------
    key = prng_key(key)
    data = as_data(data)
    val = None if validation is None else as_data(validation, "validation")
    objective = make_objective(resolve_loss(loss), loss_on, reduction, metrics)
    ks = tb.parse(tbptt)
    checks.count(epochs, "epochs", 0)
    checks.count(early_stopping, "early_stopping", 1, allow_none=True)
    checks.count(checkpoint_every, "checkpoint_every", 1, allow_none=True)
    checks.count(max_steps, "max_steps", 0, allow_none=True)
    checks.count(max_nonfinite, "max_nonfinite", 0)
    checks.count(steps_per_execution, "steps_per_execution", 1, allow_none=True)
    if not all(callable(c) for c in callbacks):
        raise TypeError(f"callbacks must be functions f(step, epoch_metrics, model), got {list(callbacks)!r}")
    run_forward = training_forward(model, forward)
    if ks is not None:
        if forward is not None or not isinstance(model, Stateful):
            raise ValueError(
                "tbptt needs a ManyToMany (a model that carries its state across windows, without forward=), "
                f"got a {type(model).__name__}" + (" with forward=" if forward is not None else "")
            )
        if data.inputs.ndim != 3:
            raise ValueError(f"tbptt needs sequence inputs (N, T, F), got shape {tuple(data.inputs.shape)}")
    optimizer = default_optimizer() if optimizer is None else optimizer
    if remat is not None:
        model = with_remat(model, remat)
    checks.optimizer(optimizer, eqx.filter(model, eqx.is_inexact_array))
    resumed = checks.checkpoint_path(checkpoint, resume)
    checks.log_path(log)
    architecture = _architecture(model) if checkpoint is not None else None

    # ---- the pieces ----------------------------------------------------------------------------
    devices = Placement(jax.device_count() if shard else 1)
    n_examples = devices.global_size(data, "data")
    checks.count(batch_size, "batch_size", 1, n_examples)
    rows = -(-batch_size // devices.n_dev) * devices.n_dev  # batch rows, padded to a multiple of the devices
    whole = Sequences(rows, run_forward, objective, devices.constrain)
    source = whole if ks is None else Windows(rows, data.inputs.shape[1], *ks, objective, devices.constrain)
    device_data = devices.data(source.device_data(data))
    val_data = None if val is None else devices.data(val)
    if val is not None:
        devices.global_size(val, "validation")
    _check_shapes(source, whole, model, device_data, val_data, data, val, objective, rows)
    lengths = devices.global_lengths(data, _steps(data))
    most = -(-n_examples // batch_size) * (source.geometry.count if ks is not None else 1)
    block = Block(
        make_update(source.loss, optimizer),
        steps_per_execution or min(BLOCK, most),
        max_nonfinite,
        devices.replicate,
        devices.state,
        devices.host,
    )
    evaluator = None
    if val is not None:
        evaluator = Evaluator(run_forward, objective, rows, devices.constrain, devices.state, devices.host)
    hooks = _hooks(max_steps, max_nonfinite, early_stopping, callbacks, progress, log, devices.writer)
    if checkpoint is not None:
        info = checkpoint_info or {}
        hooks.append(hk.Checkpointer(checkpoint, checkpoint_every, info, architecture, devices.host, devices.writer))

    state = TrainState.create(model, optimizer, source.init_carry(model), key)
    run = hk.Run(state, History(), epochs, hooks)
    if resumed is not None:
        arrays, meta = ckpt.load(checkpoint, ckpt.arrays_of(state))
        run.state = eqx.combine(arrays, state)
        run.history = History.from_dict(meta["history"])
        run.restore(meta["position"])
        for h in hooks:
            h.load_state_dict(meta["hooks"].get(type(h).__name__, {}))
    shuffle_key = jax.random.split(run.state.key)[0] if shuffle else None
    run.state = devices.state(run.state)
    run.total_steps = epochs * most if max_steps is None else min(epochs * most, max_steps)

    # ---- the loop ------------------------------------------------------------------------------
    for h in hooks:
        h.start(run)
    stop = None
    while run.epoch < epochs and stop is None:
        plan = source.plan(batch_indices(n_examples, batch_size, shuffle_key, run.epoch), lengths)
        run.epoch_updates, epoch_started = len(plan), time.perf_counter()
        while run.update < len(plan) and stop is None:
            bounds = [run.update + b - run.step for h in hooks if (b := h.boundary(run.step))]
            u, end, started = run.update, min([len(plan), run.update + block.size, *bounds]), time.perf_counter()
            run.state, out = block(run.state, device_data, plan.idx[u:end], plan.window[u:end])
            _record(run, out, plan.real[u : u + len(out.loss)])
            stop = _first(stop, [h.after_block(run, time.perf_counter() - started) for h in hooks])
        if run.update >= len(plan):
            metrics = finish(run.epoch_sums, objective.metrics)
            if evaluator is not None:
                metrics.update({f"val_{k}": v for k, v in evaluator(run.model, val_data).items()})
            seconds = time.perf_counter() - epoch_started
            run.history.epochs.append(metrics)
            run.history.epoch_seconds.append(seconds)
            run.history.epoch_steps.append(run.step)
            stop = _first(stop, [h.after_epoch(run, metrics, seconds) for h in hooks])
            run.epoch, run.update, run.epoch_sums = run.epoch + 1, 0, {}
    if stop is not None:
        run.history.stopped, run.history.stop_reason = stop.message, stop.kind
        if stop.kind == "non_finite":
            warnings.warn(stop.message, RuntimeWarning, stacklevel=2)
    for h in hooks:
        h.finish(run, stop)
    return devices.local(run.model), run.history


def _first(stop, candidates):
    """The stop already set, else the first hook's that says stop (every hook still runs)."""
    found = [c for c in candidates if c is not None]
    return stop if stop is not None else (found[0] if found else None)


def _record(run: hk.Run, out, real: np.ndarray) -> None:
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


def _check_shapes(source, whole, model, device_data, val_data, data, val, objective, rows) -> None:
    """Trace the objective on one batch of the training and validation data (no compute):
    shape errors surface now, prefixed with the argument's name, and class ids are
    checked against the model's number of outputs."""
    idx = jax.ShapeDtypeStruct((rows,), np.int32)
    key = jax.random.PRNGKey(0)
    carry = source.init_carry(model)
    with _naming("data"):
        jax.eval_shape(lambda m, d, i: source.loss(m, carry, d, i, 0, key), model, device_data, idx)
        probe = jax.eval_shape(lambda m, d, i: whole.forward(m, *_first_batch(d, i), key), model, data, idx)
    checks.targets(data, "data", objective, probe)
    if val is not None:
        with _naming("validation"):
            jax.eval_shape(lambda m, d, i: whole.loss(m, None, d, i, 0, None), model, val_data, idx)
        checks.targets(val, "validation", objective, probe)


@contextlib.contextmanager
def _naming(argument: str):
    """Re-raise a ValueError/TypeError from tracing the model on ``argument`` with its name in front."""
    try:
        yield
    except (ValueError, TypeError) as e:
        raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{argument}: {e}") from None


def _first_batch(data, idx):
    take = lambda a: None if a is None else a[idx]  # noqa: E731
    return take(data.inputs), take(data.targets), take(data.lengths)


def _architecture(model) -> dict | None:
    """The model's architecture for the checkpoint (None for models ``jaxrnn.load`` cannot describe)."""
    from jaxrnn.io import architecture

    try:
        return architecture(model)
    except TypeError:
        return None


def _hooks(max_steps, max_nonfinite, early_stopping, callbacks, progress, log, writer: bool) -> list[hk.Hook]:
    """The hooks the arguments ask for, in the order they act; only process 0 shows and logs."""
    hooks: list[hk.Hook] = [hk.NonFiniteLimit(max_nonfinite)]
    if max_steps is not None:
        hooks.append(hk.MaxSteps(max_steps))
    if early_stopping is not None:
        hooks.append(hk.EarlyStopping(early_stopping))
    if callbacks:
        hooks.append(hk.Callbacks(callbacks))
    bar = _progress(progress) if writer else None
    if bar is not None:
        hooks.append(bar)
    if log is not None and writer:
        hooks.append(hk.CSVLog(log))
    return hooks


def _progress(progress: bool | None) -> hk.Progress | None:
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    try:
        return hk.Progress()
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install 'jaxrnn[progress]'") from None
        warnings.warn("no progress bar: pip install 'jaxrnn[progress]' for one", stacklevel=3)
        return None
