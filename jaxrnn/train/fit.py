"""``jaxrnn.fit``: train a model on arrays with Optax, one jit-compiled update per batch or window."""

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import PRNGKeyArray

from jaxrnn.layers import with_remat
from jaxrnn.models import ManyToMany
from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train import tbptt as tb
from jaxrnn.train.data import Data, as_data, batch_indices, gather
from jaxrnn.train.history import History
from jaxrnn.train.losses import LossFn, cross_entropy, resolve_loss
from jaxrnn.train.objective import Forward, Objective, default_forward, lengths_mask

Callback = Callable[[int, dict, eqx.Module], bool | None]


def default_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """Clip by global norm 1.0, then Adam; the learning rate is injected so fit can record it."""
    return optax.chain(
        optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    )


def _learning_rate(opt_state) -> float:
    try:
        lr = optax.tree_utils.tree_get(opt_state, "learning_rate", default=None)
    except KeyError:  # several inject_hyperparams: ambiguous
        lr = None
    return math.nan if lr is None else float(lr)


def _sums_to_metrics(sums: dict) -> dict[str, float]:
    return {k: t / c if c > 0 else math.nan for k, (t, c) in sums.items()}


def _guarded_update(objective_fn, optimizer):
    """One jit-compiled update; a non-finite loss or gradient leaves model and optimizer as they were."""

    @eqx.filter_jit
    def update(model, opt_state, carry, *args):
        (loss, (new_carry, sums)), grads = eqx.filter_value_and_grad(objective_fn, has_aux=True)(model, carry, *args)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        new_model = eqx.apply_updates(model, updates)
        pick = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        model = eqx.combine(
            jax.tree.map(pick, eqx.filter(new_model, eqx.is_array), eqx.filter(model, eqx.is_array)),
            model,
            is_leaf=lambda x: x is None,
        )
        opt_state = jax.tree.map(pick, new_opt, opt_state)
        new_carry = jax.tree.map(pick, new_carry, carry) if carry is not None else None
        return model, opt_state, new_carry, {"loss": loss, "grad_norm": grad_norm, "finite": finite, "sums": sums}

    return update


def _check_arguments(model, data: Data, batch_size, epochs, windows, checkpoint, resume, forward):
    if not (isinstance(batch_size, int) and 1 <= batch_size <= data.size):
        raise ValueError(f"batch_size must be an int in [1, {data.size}] (the number of examples), got {batch_size!r}")
    if not (isinstance(epochs, int) and epochs >= 0):
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if windows is not None:
        if not isinstance(model, ManyToMany) or forward is not None:
            raise ValueError("tbptt needs a ManyToMany model (one output per step, state carried across windows)")
        if data.inputs.ndim != 3:
            raise ValueError(f"tbptt needs sequence inputs (N, T, F), got shape {tuple(data.inputs.shape)}")
    if checkpoint is not None and os.path.exists(checkpoint):
        ckpt.read_meta(checkpoint)  # raises if it is not a jaxrnn checkpoint or is corrupt
        if not resume:
            raise ValueError(f"checkpoint {checkpoint!r} exists: pass resume=True to continue it, or another path")
    if checkpoint is not None and not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        raise ValueError(f"checkpoint {checkpoint!r}: its folder does not exist")


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
    shard: bool = True,
) -> tuple[eqx.Module, History]:
    """Train ``model`` on ``data = (inputs, targets[, lengths])``; returns ``(model, history)``.

    - **Batches**: shuffled every epoch from ``key``; the last partial batch is padded
      with weight-0 examples (every example is used once per epoch and the update
      compiles once).
    - **Loss** on logits: 'mse', 'cross_entropy' (targets are class ids) or a callable
      ``(logits, targets) -> per-position loss``. Per-step outputs are masked by
      ``lengths``. ``loss_on='last'`` uses only each sequence's last valid step.
      ``reduction='mean'`` (default) averages over every valid (sequence, step);
      ``'sum'`` sums over steps and averages over sequences (the seeds' L = sum_t L_t).
    - **Optimizer**: any Optax transformation; default ``default_optimizer()``, clipping
      by global norm 1.0 then Adam(1e-3). History records per update the loss, the global
      gradient norm before clipping and the learning rate (found where
      ``optax.inject_hyperparams`` put it; NaN otherwise).
    - **tbptt**: ``k`` or ``(k1, k2)`` for ManyToMany models (see ``jaxrnn.train.tbptt``):
      each batch gives one update per window, the state carried across windows.
    - **validation** data (same form): ``val_loss`` (and ``val_accuracy`` for
      cross-entropy) each epoch. ``early_stopping=p`` stops after p epochs without a
      better monitored loss (``val_loss``, else the epoch's training loss) and returns
      the best model.
    - **callbacks** ``f(step, epoch_metrics, model)`` run after each epoch; one that
      returns True stops training.
    - **checkpoint** path: saved atomically every ``checkpoint_every`` updates and at the
      end; ``resume=True`` continues from it (if it exists) exactly as an uninterrupted
      run would on CPU. ``checkpoint_info`` (JSON-able) is stored with it, for you to
      read back with ``jaxrnn.train.checkpoint.read_meta``. ``max_steps`` stops after that
      many updates in total.
    - **Non-finite** loss or gradient: the update is skipped (``history.finite``); after
      ``max_nonfinite`` skips training stops with a warning naming the step, and the
      returned model is the last finite one.
    - **Devices**: with several devices (and ``shard=True``) the batch is split across
      them (data parallel, ``jax.sharding``); the result equals one device's up to
      float rounding.
    - **remat**: True/False sets rematerialisation on every recurrent layer of the model
      (BPTT stores only the states and recomputes each step: less memory, more time);
      None leaves the layers as they are.
    - **progress**: a tqdm bar (default: when stderr is a terminal and tqdm is installed).
    - **key** drives shuffling and dropout: the same key gives the same run.
    """
    if remat is not None:
        model = with_remat(model, remat)
    data = as_data(data)
    val = None if validation is None else as_data(validation, "validation")
    loss_fn = resolve_loss(loss)
    if loss_on not in ("all", "last"):
        raise ValueError(f"loss_on must be 'all' or 'last', got {loss_on!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    ks = tb.parse(tbptt)
    _check_arguments(model, data, batch_size, epochs, ks, checkpoint, resume, forward)
    if max_nonfinite < 0:
        raise ValueError(f"max_nonfinite must be >= 0, got {max_nonfinite}")
    objective = Objective(loss_fn, reduction, loss_on == "last", loss_fn is cross_entropy)
    optimizer = optimizer if optimizer is not None else default_optimizer()
    run_forward = forward or default_forward

    T = data.inputs.shape[1] if data.inputs.ndim == 3 else 0
    windows = tb.plan(T, *ks) if ks is not None else None

    # ---- the differentiated functions -----------------------------------------------------
    def batch_objective(model, carry, inputs, targets, lengths, weights, key):
        logits = run_forward(model, inputs, targets, lengths, key)
        valid = lengths_mask(lengths, inputs.shape[1], inputs.shape[0]) if inputs.ndim == 3 else None
        value, sums = objective(logits, targets, weights, valid)
        return value, (carry, sums)

    def window_objective(model, carry, inputs, targets, valid, weights, key):
        k_a, k_b = jax.random.split(key)
        k1 = windows.k1
        logits_a, mid = model.run(inputs[:, :k1], carry, mask=valid[:, :k1], key=k_a)
        logits_b, _ = model.run(inputs[:, k1:], mid, mask=valid[:, k1:], key=k_b)
        logits = jnp.concatenate([logits_a, logits_b], axis=1)[:, -k1:]
        value, sums = objective(logits, targets[:, -k1:], weights, valid[:, -k1:])
        return value, (jax.lax.stop_gradient(mid), sums)

    update = _guarded_update(window_objective if windows else batch_objective, optimizer)

    @eqx.filter_jit
    def evaluate(model, inputs, targets, lengths, weights):
        logits = run_forward(eqx.nn.inference_mode(model), inputs, targets, lengths, None)
        valid = lengths_mask(lengths, inputs.shape[1], inputs.shape[0]) if inputs.ndim == 3 else None
        return objective(logits, targets, weights, valid)[1]

    # ---- devices -------------------------------------------------------------------------
    n_dev = jax.device_count() if shard else 1
    rows = -(-batch_size // n_dev) * n_dev  # batch rows, padded to a multiple of the devices
    if n_dev > 1:
        mesh = jax.make_mesh((n_dev,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
        batch_sharding, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        put = lambda a: None if a is None else jax.device_put(a, batch_sharding)  # noqa: E731
        model = jax.device_put(model, replicated)
    else:
        put = lambda a: None if a is None else jnp.asarray(a)  # noqa: E731

    def batch_at(source: Data, idx: np.ndarray):
        """The batch at ``idx`` padded to ``rows``, its weights, and how many examples are real."""
        idx = np.concatenate([idx, np.full(rows - len(idx), -1)])
        part, weights = gather(source, idx)
        return Data(put(part.inputs), put(part.targets), put(part.lengths)), put(weights), int(np.sum(idx >= 0))

    # ---- state, resume ----------------------------------------------------------------------
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    history = History()
    position = {"epoch": 0, "batch": 0, "window": 0, "step": 0, "epoch_sums": {}, "best": math.inf, "since_best": 0}
    carry = model.rnn.init_state(rows) if windows else None
    best_model = model
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        template = (eqx.filter(model, eqx.is_array), opt_state, carry, key)
        (params, opt_state, carry, key), meta = ckpt.load(checkpoint, template)
        model = eqx.combine(params, model)
        history = History.from_dict(meta["history"])
        position = meta["position"]
        best_model = model

    def save():
        if checkpoint is not None:
            meta = {"position": position, "history": history.to_dict(), "info": checkpoint_info or {}}
            ckpt.save(checkpoint, (eqx.filter(model, eqx.is_array), opt_state, carry, key), meta)

    shuffle_key, dropout_key = jax.random.split(key)
    n_batches = -(-data.size // batch_size)
    total_steps = epochs * n_batches * (windows.count if windows else 1)
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    bar = _progress_bar(progress, total_steps, position["step"])
    started, seen = time.perf_counter(), 0

    # ---- the loop ------------------------------------------------------------------------
    stop = None
    while position["epoch"] < epochs and stop is None:
        epoch = position["epoch"]
        order = batch_indices(data.size, batch_size, shuffle_key if shuffle else None, epoch)
        while position["batch"] < n_batches and stop is None:
            batch, weights, n_real = batch_at(data, order[position["batch"]])
            n_windows = 1
            if windows:  # windows past every sequence's end hold no loss: skip them
                longest = T if batch.lengths is None else int(np.max(np.asarray(batch.lengths)))
                n_windows = max(1, -(-longest // windows.k1))
                inputs = tb.pad_time(batch.inputs, windows, T)
                targets = tb.pad_time(batch.targets, windows, T)
                valid = jnp.ones((rows, T), bool) if batch.lengths is None else lengths_mask(batch.lengths, T, rows)
                valid = tb.pad_time(valid, windows, T)
            batch_done = False
            while not batch_done and stop is None:
                step_key = jax.random.fold_in(dropout_key, position["step"])
                if windows:
                    i = position["window"]
                    args = (
                        tb.window(inputs, i, windows),
                        tb.window(targets, i, windows),
                        tb.window(valid, i, windows),
                        weights,
                        step_key,
                    )
                else:
                    args = (batch.inputs, batch.targets, batch.lengths, weights, step_key)
                model, opt_state, carry, out = update(model, opt_state, carry, *args)
                history.record(out, _learning_rate(opt_state))
                if history.finite[-1]:
                    _accumulate(position["epoch_sums"], out["sums"])
                position["step"] += 1
                position["window"] += 1
                batch_done = position["window"] == n_windows
                if batch_done:  # the position always names the next update to run
                    position["batch"] += 1
                    position["window"] = 0
                    carry = model.rnn.init_state(rows) if windows else None
                seen += n_real
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        epoch=epoch + 1,
                        loss=f"{history.loss[-1]:.4g}",
                        gnorm=f"{history.grad_norm[-1]:.3g}",
                        seq_s=f"{seen / (time.perf_counter() - started):.0f}",
                    )
                if history.skipped > max_nonfinite:
                    stop = (
                        f"stopped at step {position['step']}: {history.skipped} updates had a non-finite "
                        f"loss or gradient (max_nonfinite={max_nonfinite}); the model is the last finite one"
                    )
                elif max_steps is not None and position["step"] >= max_steps:
                    stop = f"stopped at step {position['step']}: max_steps reached"
                if checkpoint_every and position["step"] % checkpoint_every == 0:
                    save()
        if position["batch"] >= n_batches:
            metrics = _sums_to_metrics(position["epoch_sums"])
            if val is not None:
                sums = {}
                for idx in batch_indices(val.size, rows, None, 0):
                    vb, vw, _ = batch_at(val, idx)
                    _accumulate(sums, evaluate(model, vb.inputs, vb.targets, vb.lengths, vw))
                metrics.update({f"val_{k}": v for k, v in _sums_to_metrics(sums).items()})
            history.epochs.append(metrics)
            position["epoch"] += 1
            position["batch"] = 0
            position["epoch_sums"] = {}
            monitored = metrics.get("val_loss", metrics["loss"])
            if monitored < position["best"]:
                position["best"], position["since_best"], best_model = monitored, 0, model
            else:
                position["since_best"] += 1
            if early_stopping is not None and position["since_best"] >= early_stopping:
                stop = f"early stopping after epoch {epoch + 1}: no improvement in {early_stopping} epochs"
                model = best_model
            for callback in callbacks:
                if callback(position["step"], metrics, model):
                    stop = f"stopped by a callback after epoch {epoch + 1}"
    if bar is not None:
        bar.close()
    history.stopped = stop
    if stop is not None and "non-finite" in stop:
        warnings.warn(stop, RuntimeWarning, stacklevel=2)
    save()
    return model, history


def _accumulate(into: dict, sums: dict) -> None:
    """Add device (total, count) pairs into a JSON-able dict of float pairs."""
    for k, (t, c) in sums.items():
        t0, c0 = into.get(k, (0.0, 0.0))
        into[k] = (t0 + float(t), c0 + float(c))


def _progress_bar(progress: bool | None, total: int, initial: int):
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install 'jaxrnn[progress]'") from None
        warnings.warn("no progress bar: pip install 'jaxrnn[progress]' for one", stacklevel=3)
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
