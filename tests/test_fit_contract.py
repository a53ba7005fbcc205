"""fit's whole contract, fuzzed against a plain Optax loop written here.

Hypothesis draws a configuration (cell, layers, architecture, loss, data size, batch
size above the data size too, epochs, shuffling, validation, truncated BPTT, lengths,
optimizer) and callbacks (early stopping, a step limit, a non-finite limit with NaNs
injected into the data, a CSV log, a checkpoint with the run killed at a random step and
resumed, the same callback objects used first by another fit), runs ``fit``, and runs
the same training as a plain loop: ``jax.value_and_grad`` of the loss written out here
and ``optax.update``, over the batches that fit's documented order gives (a permutation
of ``fold_in(split(key)[0], epoch)`` when shuffling), skipping a non-finite update as
fit documents. Both run in float64; parameters and every recorded number agree to 1e-9
relative (the arithmetic differs only in summation order: fit pads the last batch with
weight-0 rows and runs its updates inside one compiled scan), while the discrete
outcomes (which updates were skipped, the step and epoch each callback stopped at, the
reason, the CSV rows, the step a run resumed from) agree exactly, and a resumed run is
the uninterrupted one bit for bit.

The suite runs a fixed, small set of draws (``derandomize``); the long profile is one
command::

    JAXRNN_FUZZ=long JAXRNN_FUZZ_EXAMPLES=300 python -m pytest tests/test_fit_contract.py -q

(``JAXRNN_FUZZ=long`` draws at random, anew every run, up to a thousand training sequences, and
prints the ``@reproduce_failure`` line of a failure.)
"""

import csv
import dataclasses
import math
import os
import tempfile
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import release_if_many_maps
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jaxrnn
from jaxrnn.callbacks import Callback, CSVLogger, EarlyStopping, MaxSteps, ModelCheckpoint, StopOnNonFinite

T, F, H, CLASSES = 5, 2, 3, 3
CELLS = {"rnn": jaxrnn.SimpleRNNCell, "lstm": jaxrnn.LSTMCell, "gru": jaxrnn.GRUCell}
RTOL = 1e-9

LONG = os.environ.get("JAXRNN_FUZZ") == "long"
MAX_EXAMPLES = 1000 if LONG else 40
"""The largest data set drawn (the long profile trains on up to a thousand sequences)."""
settings.register_profile(
    "suite",
    max_examples=int(os.environ.get("JAXRNN_FUZZ_EXAMPLES", 6)),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("JAXRNN_FUZZ_EXAMPLES", 300)),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
PROFILE = settings.get_profile("long" if LONG else "suite")


@dataclass(frozen=True)
class Config:
    """One training run: what fit is given, and what the plain loop reproduces."""

    architecture: str  # "many_to_one" or "many_to_many"
    cell: str
    layers: int
    loss: str  # "mse" or "cross_entropy"
    n: int
    batch_size: int
    epochs: int
    shuffle: bool
    lengths: bool
    validation: bool
    tbptt: tuple[int, int] | None
    optimizer: str
    early_stopping: int | None
    max_steps: int | None
    nonfinite_limit: int | None  # None: fit's default StopOnNonFinite(10)
    poisoned: tuple[int, ...]  # examples whose inputs hold a NaN
    csv: bool
    checkpoint: tuple[int, int] | None  # (every, the step the first try is killed at)
    seed: int


@st.composite
def configs(draw) -> Config:
    architecture = draw(st.sampled_from(["many_to_one", "many_to_many"]))
    n = draw(st.integers(2, 14) | st.integers(15, MAX_EXAMPLES))
    tbptt = None
    if architecture == "many_to_many" and draw(st.booleans()):
        k1 = draw(st.integers(1, T))
        tbptt = (k1, draw(st.integers(k1, T + 1)))
    max_steps = draw(st.none() | st.integers(0, 14))
    nonfinite_limit = draw(st.none() | st.integers(0, 4))
    poisoned = tuple(sorted(draw(st.sets(st.integers(0, n - 1), max_size=n)))) if draw(st.booleans()) else ()
    checkpoint = None
    if draw(st.booleans()):
        checkpoint = (draw(st.integers(1, 4)), draw(st.integers(1, 12)))
    return Config(
        architecture=architecture,
        cell=draw(st.sampled_from(sorted(CELLS))),
        layers=draw(st.integers(1, 2)),
        loss=draw(st.sampled_from(["mse", "cross_entropy"])),
        n=n,
        batch_size=draw(st.integers(1, n + 3)),
        epochs=draw(st.integers(1, 3)),
        shuffle=draw(st.booleans()),
        lengths=draw(st.booleans()),
        validation=draw(st.booleans()),
        tbptt=tbptt,
        optimizer=draw(st.sampled_from(["sgd", "adam", "clip_adam"])),
        early_stopping=draw(st.none() | st.integers(1, 2)),
        max_steps=max_steps,
        nonfinite_limit=nonfinite_limit,
        poisoned=poisoned,
        csv=draw(st.booleans()),
        checkpoint=checkpoint,
        seed=draw(st.integers(0, 2**16)),
    )


# ---- what both sides train -----------------------------------------------------------------


def make_model(c: Config):
    k = jax.random.split(jax.random.PRNGKey(c.seed), 2)
    rnn = jaxrnn.make_rnn(CELLS[c.cell], F, H, key=k[0], num_layers=c.layers, dtype=jnp.float64)
    out = CLASSES if c.loss == "cross_entropy" else 2
    kind = jaxrnn.ManyToOne if c.architecture == "many_to_one" else jaxrnn.ManyToMany
    return kind(rnn, jaxrnn.Head(H, out, key=k[1], dtype=jnp.float64))


def make_data(c: Config, n: int, seed: int, poisoned=()) -> tuple:
    """``(inputs (n, T, F), targets[, lengths in [1, T]])``: targets for the loss and architecture."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F))
    for i in poisoned:
        x[i, rng.integers(T), 0] = np.nan
    lengths = rng.integers(1, T + 1, n) if c.lengths else None
    per_step = c.architecture == "many_to_many"
    if c.loss == "cross_entropy":
        y = rng.integers(0, CLASSES, (n, T) if per_step else n)
    else:
        y = rng.normal(size=(n, T, 2) if per_step else (n, 2))
    return (jnp.asarray(x), jnp.asarray(y)) + (() if lengths is None else (jnp.asarray(lengths),))


def fit_data(c: Config, data: tuple):
    batches = jaxrnn.Batches(data, c.batch_size, shuffle=c.shuffle)
    return jaxrnn.TBPTT(batches, *c.tbptt) if c.tbptt else batches


def optimizer(name: str):
    if name == "sgd":
        return optax.sgd(0.1)
    if name == "adam":
        return optax.adam(0.02)
    return optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.02))


def per_position_loss(c: Config, logits, targets):
    """Written out: the softmax cross-entropy of a class id, or the squared error averaged over features."""
    if c.loss == "cross_entropy":
        return -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), targets[..., None], -1)[..., 0]
    return jnp.mean((logits - targets) ** 2, -1)


def masked_sums(per, mask):
    """(sum of the per-position losses where ``mask``, number of such positions)."""
    return jnp.where(mask, per, 0.0).sum(), mask.sum().astype(per.dtype)


def valid_steps(lengths, n: int):
    return jnp.ones((n, T), bool) if lengths is None else jnp.arange(T)[None, :] < lengths[:, None]


def sequence_loss(c: Config, model, x, y, lengths):
    """(sum, count) over every example (many-to-one) or every valid (example, step)."""
    per = per_position_loss(c, model(x, lengths=lengths), y)
    if c.architecture == "many_to_one":
        return per.sum(), jnp.asarray(per.shape[0], per.dtype)
    return masked_sums(per, valid_steps(lengths, x.shape[0]))


def window_loss(c: Config, model, carry, x, y, lengths, w: int):
    """TBPTT(k1, k2), window ``w``: from ``carry`` (the state at step w k1 + k1 - k2, or zero
    before the sequence starts) through steps [w k1 + k1 - k2, w k1 + k1) of the sequence;
    the losses of its last k1 steps. Returns ((sum, count), the state k1 steps into the
    window, where the next window starts; zero for a sequence whose state is not finite)."""
    k1, k2 = c.tbptt
    start, end = w * k1 + k1 - k2, w * k1 + k1
    valid = valid_steps(lengths, x.shape[0])
    a, m, b = max(start, 0), min(max(start + k1, 0), T), min(end, T)
    logits_a, mid = model.run(x[:, a:m], carry, mask=valid[:, a:m])
    logits_b, _ = model.run(x[:, m:b], mid, mask=valid[:, m:b])
    logits = jnp.concatenate([logits_a, logits_b], axis=1)[:, w * k1 - a :]
    per = per_position_loss(c, logits, y[:, w * k1 : b])
    finite = jnp.stack([jnp.isfinite(a.reshape(a.shape[0], -1)).all(1) for a in jax.tree.leaves(mid)]).all(0)
    zero = model.init_state(x.shape[0])
    mid = jax.tree.map(lambda m, z: jnp.where(finite.reshape(-1, *[1] * (m.ndim - 1)), m, z), mid, zero)
    return masked_sums(per, valid[:, w * k1 : b]), jax.lax.stop_gradient(mid)


def batch_loss(c: Config, static, batch: tuple, w: int | None, carry):
    """``params -> ((sum, count), the state carried on)`` of a batch of whole sequences
    (``w`` None) or of its TBPTT window ``w`` from ``carry``."""
    x, y, lengths = batch
    if w is None:
        return lambda p: (sequence_loss(c, eqx.combine(p, static), x, y, lengths), None)
    return lambda p: window_loss(c, eqx.combine(p, static), carry, x, y, lengths, w)


@eqx.filter_jit
def optax_update(c: Config, static, opt, w, params, opt_state, batch: tuple, carry):
    """One Optax update of a batch's (or window's) mean loss, and whether everything it
    produced is finite: (loss, finite, new params, new optimizer state, sum, count, the
    state carried on). Compiled, so that a long profile's many updates run fast."""
    loss_fn = batch_loss(c, static, batch, w, carry)

    def mean(p):
        (total, count), aux = loss_fn(p)
        return total / jnp.maximum(count, 1e-12), (total, count, aux)

    (value, (total, count, aux)), grads = jax.value_and_grad(mean, has_aux=True)(params)
    updates, new_state = opt.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    leaves = jax.tree.leaves((value, grads, new_params, eqx.filter(new_state, eqx.is_inexact_array)))
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))
    return value, finite, new_params, new_state, total, count, aux


# ---- the plain loop --------------------------------------------------------------------------


@dataclass
class Reference:
    model: eqx.Module
    loss: list = field(default_factory=list)
    finite: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    epoch_steps: list = field(default_factory=list)
    stopped: str | None = None


def plain_loop(c: Config, model, data: tuple, val: tuple | None, key) -> Reference:
    """The training fit documents, written out: batches in fit's order, one Optax update per
    batch (or per TBPTT window, the state carried from window to window), a non-finite
    update skipped (parameters and optimizer state kept), the callbacks' rules."""
    x, y = data[0], data[1]
    lengths = data[2] if len(data) == 3 else None
    opt = optimizer(c.optimizer)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    shuffle_key = jax.random.split(key)[0]
    limit = 10 if c.nonfinite_limit is None else c.nonfinite_limit
    batch = min(c.batch_size, c.n)
    ref = Reference(model)
    step = skipped = 0
    best, since_best, best_params = math.inf, 0, None

    def update(params, opt_state, batch, w, carry):
        value, finite, new_params, new_state, total, count, aux = optax_update(
            c, static, opt, w, params, opt_state, batch, carry
        )
        return float(value), bool(finite), new_params, new_state, (float(total), float(count)), aux

    def block_stop(step, skipped):
        """fit's callbacks in list order: its default guard first, else the user's MaxSteps before theirs."""
        rules = [
            ("non_finite", skipped > limit),
            ("max_steps", c.max_steps is not None and step >= c.max_steps),
        ]
        if c.nonfinite_limit is not None:
            rules.reverse()
        return next((kind for kind, holds in rules if holds), None)

    stop = "max_steps" if c.max_steps == 0 else None
    for epoch in range(c.epochs if stop is None else 0):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), c.n))
        order = order if c.shuffle else np.arange(c.n)
        batches = [order[i : i + batch] for i in range(0, c.n, batch)]
        sums, done = [0.0, 0.0], True
        for b, idx in enumerate(batches):
            xb, yb, nb = x[idx], y[idx], None if lengths is None else lengths[idx]
            if c.tbptt is None:
                plan = [None]
            else:
                longest = T if nb is None else int(jnp.max(nb))
                plan = list(range(max(1, -(-longest // c.tbptt[0]))))
                carry = eqx.combine(params, static).init_state(len(idx))
            for w in plan:
                value, finite, new_params, new_state, (total, count), mid = update(
                    params, opt_state, (xb, yb, nb), w, None if w is None else carry
                )
                ref.loss.append(value)
                ref.finite.append(finite)
                step += 1
                carry = mid  # the state this window reached, whether or not its update is applied
                if finite:
                    params, opt_state, sums = new_params, new_state, [sums[0] + total, sums[1] + count]
                else:
                    skipped += 1
                stop = block_stop(step, skipped)
                if stop is not None:
                    break
            if stop is not None:
                done = b + 1 == len(batches) and w == plan[-1]
                break
        if done:  # the epoch's end: its metrics, then early stopping
            metrics = {"loss": sums[0] / sums[1] if sums[1] > 0 else math.nan}
            if val is not None:
                v = sequence_loss(c, eqx.combine(params, static), val[0], val[1], val[2] if len(val) == 3 else None)
                metrics["val_loss"] = float(v[0] / v[1])
            ref.epochs.append(metrics)
            ref.epoch_steps.append(step)
            if c.early_stopping is not None:
                monitored = metrics.get("val_loss", metrics["loss"])
                assume(not (math.isfinite(best) and math.isclose(monitored, best, rel_tol=1e-7)))  # a near tie
                if monitored < best:
                    best, since_best, best_params = monitored, 0, params
                else:
                    since_best += 1
                if since_best >= c.early_stopping:
                    params = params if best_params is None else best_params
                    stop = stop or "early_stopping"
        if stop is not None:
            break
    ref.stopped = stop
    ref.model = eqx.combine(params, static)
    return ref


# ---- fit, with the callbacks the configuration names ----------------------------------------


class Killed(Exception):
    """The process dying at a step: fit ends without its final callbacks."""


class Kill(Callback):
    def __init__(self, at: int):
        self.at = at

    def boundary(self, step):
        return self.at if step < self.at else None

    def on_block_end(self, run, seconds):
        if run.step >= self.at:
            raise Killed


def callbacks_of(c: Config, folder: str) -> list:
    out = []
    if c.early_stopping is not None:
        out.append(EarlyStopping(c.early_stopping))
    if c.max_steps is not None:
        out.append(MaxSteps(c.max_steps))
    if c.nonfinite_limit is not None:
        out.append(StopOnNonFinite(c.nonfinite_limit))
    if c.csv:
        out.append(CSVLogger(os.path.join(folder, "log.csv")))
    return out


def fit_args(c: Config, key, val) -> dict:
    return dict(
        key=key,
        loss=c.loss,
        epochs=c.epochs,
        validation=val,
        optimizer=optimizer(c.optimizer),
        verbose=False,
    )


def run_fit(c: Config, model, data, val, key, folder: str, reuse: bool):
    """fit as the configuration says: with ``reuse`` its callback objects serve another run
    first (another model, data and seed); with a checkpoint, a first try killed at a step
    and a second that resumes it. Returns (model, history) and (killed at, resumed from)."""
    args = fit_args(c, key, val)
    callbacks = callbacks_of(c, folder)
    if reuse:
        other = dataclasses.replace(c, seed=c.seed + 1, poisoned=())
        jaxrnn.fit(make_model(other), fit_data(other, make_data(other, c.n, other.seed)), callbacks=callbacks, **args)
    if c.checkpoint is None:
        return jaxrnn.fit(model, fit_data(c, data), callbacks=callbacks, **args), None
    every, kill_at = c.checkpoint
    path = os.path.join(folder, "run.ckpt")
    first = [ModelCheckpoint(path, every=every), Kill(kill_at), *callbacks]
    try:
        jaxrnn.fit(model, fit_data(c, data), callbacks=first, **args)
        killed_at = None
    except Killed:
        killed_at = kill_at
    resumed_from = jaxrnn.train.checkpoint.read_meta(path)["position"]["step"] if os.path.exists(path) else None
    second = [ModelCheckpoint(path, every=every, resume=True), *callbacks]
    return jaxrnn.fit(model, fit_data(c, data), callbacks=second, **args), (killed_at, resumed_from)


def close(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=RTOL, equal_nan=True)


def leaves(model) -> list:
    return jax.tree.leaves(eqx.filter(model, eqx.is_array))


@PROFILE
@given(configs(), st.booleans())
def test_fit_is_the_plain_optax_loop(c: Config, reuse: bool):
    release_if_many_maps()  # each draw compiles its own programs: a long run would cross the kernel's limit
    with jax.enable_x64(True), tempfile.TemporaryDirectory() as folder:
        data = make_data(c, c.n, c.seed, c.poisoned)
        val = make_data(c, 4, c.seed + 1) if c.validation else None
        key = jax.random.PRNGKey(c.seed + 2)
        model = make_model(c)
        (trained, history), resume = run_fit(c, model, data, val, key, folder, reuse)
        ref = plain_loop(c, model, data, val, key)

        # the discrete outcomes, exactly
        assert history.finite == ref.finite
        assert history.stop_reason == ref.stopped, (history.stopped, ref.stopped)
        assert history.epoch_steps == ref.epoch_steps
        if history.stop_reason in ("max_steps", "non_finite"):
            assert history.stopped.startswith(f"stopped at step {len(ref.loss)}:")
        # the numbers, to float64 rounding
        assert close(history.loss, ref.loss), (history.loss, ref.loss)
        for got, want in zip(history.epochs, ref.epochs, strict=True):
            assert set(got) == set(want) and all(close(got[k], want[k]) for k in want), (got, want)
        assert all(close(a, b) for a, b in zip(leaves(trained), leaves(ref.model), strict=True))
        assert all(np.isfinite(np.asarray(a)).all() for a in leaves(trained))  # no NaN reaches the model
        # the callbacks' traces
        if c.csv and history.epochs:
            with open(os.path.join(folder, "log.csv")) as f:
                rows = list(csv.DictReader(f))
            assert [int(r["step"]) for r in rows] == history.epoch_steps
            assert all(close(float(r["loss"]), e["loss"]) for r, e in zip(rows, history.epochs, strict=True))
        if resume is not None:
            killed_at, resumed_from = resume
            every = c.checkpoint[0]
            if killed_at is not None:  # the last save before the kill, or none
                assert resumed_from == (None if killed_at < every else killed_at // every * every)
            whole, h = jaxrnn.fit(model, fit_data(c, data), callbacks=callbacks_of(c, folder), **fit_args(c, key, val))
            assert np.array_equal(h.loss, history.loss, equal_nan=True) and h.stopped == history.stopped
            assert [list(e.items()) for e in h.epochs] == [list(e.items()) for e in history.epochs] or all(
                np.array_equal(list(a.values()), list(b.values()), equal_nan=True)
                for a, b in zip(h.epochs, history.epochs, strict=True)
            )
            assert all(np.array_equal(a, b) for a, b in zip(leaves(whole), leaves(trained))), "resumed bit for bit"


def test_the_fuzz_draws_every_feature():
    """The strategy reaches every option (so the suite's few draws could be any of them)."""
    seen = set()

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(configs())
    def collect(c):
        seen.update(
            {
                c.architecture,
                c.cell,
                c.loss,
                c.optimizer,
                "tbptt" if c.tbptt else "whole",
                "above" if c.batch_size > c.n else "below",
                "lengths" if c.lengths else "no-lengths",
                "poisoned" if c.poisoned else "clean",
                "checkpoint" if c.checkpoint else "no-checkpoint",
                "early" if c.early_stopping else "no-early",
                "max" if c.max_steps is not None else "no-max",
            }
        )

    collect()
    assert {"tbptt", "above", "poisoned", "checkpoint", "early", "max", "lengths", "clean", "lstm", "gru"} <= seen


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
