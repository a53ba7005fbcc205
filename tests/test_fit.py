"""jaxrnn.fit: learning, truncated BPTT against a numpy reference, clipping, resume, NaN guard."""

import math
import os
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn.callbacks import (
    CSVLogger,
    EarlyStopping,
    EpochPrinter,
    LambdaCallback,
    MaxSteps,
    ModelCheckpoint,
    ProgressBar,
    StopOnNonFinite,
)

F, H = 3, 8


def many_to_many(cell=jaxrnn.SimpleRNNCell, dtype=jnp.float32, out=1):
    k1, k2 = jax.random.split(key(1))
    return jaxrnn.ManyToMany(jaxrnn.make_rnn(cell, F, H, key=k1, dtype=dtype), jaxrnn.Head(H, out, key=k2, dtype=dtype))


def running_sum_data(n=64, T=12, dtype=jnp.float32):
    x = jax.random.uniform(key(2), (n, T, F), dtype, -1, 1)
    return x, 0.3 * jnp.cumsum(x[..., :1], axis=1)


def test_fit_lowers_loss_many_to_one():
    x = jax.random.uniform(key(3), (128, 10, F))
    y = (x[:, :, 0].sum(1) > 0).astype(jnp.int32)
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(4)), jaxrnn.Head(H, 2, key=key(5)))
    model, hist = jaxrnn.fit(
        model,
        jaxrnn.Batches((x, y), 32),
        key=key(6),
        loss="cross_entropy",
        epochs=15,
        validation=(x[:32], y[:32]),
        verbose=False,
    )
    assert hist.epochs[-1]["loss"] < 0.5 * hist.epochs[0]["loss"]
    assert hist.epochs[-1]["val_accuracy"] > 0.85
    assert hist.steps == 15 * 4 and len(hist.learning_rate) == hist.steps
    assert hist.learning_rate[0] == pytest.approx(1e-3)


def test_fit_lowers_loss_many_to_many_with_lengths():
    x, y = running_sum_data()
    lengths = jnp.asarray(np.random.default_rng(0).integers(4, 13, 64))
    model, hist = jaxrnn.fit(
        many_to_many(jaxrnn.LSTMCell),
        jaxrnn.Batches((x, y, lengths), 16),
        key=key(),
        epochs=20,
        optimizer=optax.adam(1e-2),
        verbose=False,
    )
    assert hist.epochs[-1]["loss"] < 0.2 * hist.epochs[0]["loss"]
    assert all(math.isnan(lr) for lr in hist.learning_rate)  # plain adam exposes no learning rate


def test_fit_lowers_loss_encoder_decoder():
    V, n = 6, 96
    src = jax.random.randint(key(7), (n, 4), 1, V)
    x = jax.nn.one_hot(src, V)
    y = src[:, ::-1]  # reverse the digits
    dec = jaxrnn.Decoder(jaxrnn.GRUCell(V, 32, key=key(8)), jaxrnn.Head(32, V, key=key(9)), vocab_size=V)
    model = jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.GRUCell, V, 32, key=key(10)), dec)
    model, hist = jaxrnn.fit(
        model,
        jaxrnn.Batches((x, y), 32),
        key=key(),
        loss="cross_entropy",
        epochs=25,
        optimizer=optax.adam(1e-2),
        verbose=False,
    )
    assert hist.epochs[-1]["loss"] < 0.5 * hist.epochs[0]["loss"]
    assert hist.epochs[-1]["accuracy"] > hist.epochs[0]["accuracy"] + 0.2


# ---- truncated BPTT against a hand-written numpy BPTT ----------------------------------------


def numpy_tbptt(params, x, y, k1, k2, lr):
    """SGD with TBPTT(k1, k2) on a tanh RNN + linear head, per-step squared error,
    mean over valid (sequence, step): every k1 steps, the losses of the last k1 steps are
    backpropagated through the last k2 steps, the state entering the window held fixed."""
    W_xh, W_hh, b_xh, b_hh, W_hy, b_y = (np.array(p, np.float64) for p in params)
    B, T, _ = x.shape
    h_carry = np.zeros((B, W_hh.shape[0]))
    carry_at = 0  # the time step the carried state enters
    for e in range(k1, -(-T // k1) * k1 + 1, k1):
        s, e = max(0, e - k2), min(e, T)
        assert carry_at == s
        h = [h_carry]
        for t in range(s, e):
            h.append(np.tanh(x[:, t] @ W_xh.T + b_xh + h[-1] @ W_hh.T + b_hh))
        region = range(max(s, e - k1) if e % k1 == 0 else e - (e - 1) % k1 - 1, e)
        count = B * len(region)
        g = {n: 0.0 for n in ["W_xh", "W_hh", "b_xh", "b_hh", "W_hy", "b_y"]}
        dh_next = np.zeros_like(h_carry)
        for t in reversed(range(s, e)):
            i = t - s + 1
            dh = dh_next.copy()
            if t in region:
                dy = 2 * (h[i] @ W_hy.T + b_y - y[:, t]) / (count * y.shape[-1])
                g["W_hy"] = g["W_hy"] + dy.T @ h[i]
                g["b_y"] = g["b_y"] + dy.sum(0)
                dh += dy @ W_hy
            dz = dh * (1 - h[i] ** 2)
            g["W_xh"] = g["W_xh"] + dz.T @ x[:, t]
            g["W_hh"] = g["W_hh"] + dz.T @ h[i - 1]
            g["b_xh"] = g["b_xh"] + dz.sum(0)
            g["b_hh"] = g["b_hh"] + dz.sum(0)
            dh_next = dz @ W_hh
        next_start = min(s + k1, T) if e - k2 >= 0 or s + k1 <= e else e
        # the next window (ending at e + k1) starts at max(0, e + k1 - k2)
        next_start = max(0, e + k1 - k2)
        if next_start < T:
            h_carry, carry_at = h[next_start - s], next_start
        W_xh, W_hh, b_xh, b_hh = (
            W_xh - lr * g["W_xh"],
            W_hh - lr * g["W_hh"],
            b_xh - lr * g["b_xh"],
            b_hh - lr * g["b_hh"],
        )
        W_hy, b_y = W_hy - lr * g["W_hy"], b_y - lr * g["b_y"]
    return W_xh, W_hh, b_xh, b_hh, W_hy, b_y


def params_of(model):
    cell, head = model.rnn.layers[0].cell, model.head
    return [cell.W_xh, cell.W_hh, cell.b_xh, cell.b_hh, head.W_hy, head.b_y]


@pytest.mark.parametrize("k1,k2", [(4, 4), (3, 5), (2, 7), (5, 5)])
def test_tbptt_k1_k2_equals_hand_written_truncated_sums(k1, k2):
    with jax.enable_x64(True):
        x, y = running_sum_data(n=4, T=12, dtype=jnp.float64)
        model = many_to_many(dtype=jnp.float64)
        lr = 0.05
        trained, hist = jaxrnn.fit(
            model,
            jaxrnn.TBPTT(jaxrnn.Batches((x, y), 4, shuffle=False), k1, k2),
            key=key(),
            epochs=1,
            optimizer=optax.sgd(lr),
            verbose=False,
        )
        assert hist.steps == -(-12 // k1)
        expected = numpy_tbptt(params_of(model), np.asarray(x), np.asarray(y), k1, k2, lr)
        for got, want in zip(params_of(trained), expected):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


def test_tbptt_with_k_equal_T_is_full_bptt():
    with jax.enable_x64(True):
        x, y = running_sum_data(n=8, T=10, dtype=jnp.float64)
        lengths = jnp.array([10, 9, 3, 10, 7, 1, 10, 5])
        runs = [
            jaxrnn.fit(
                many_to_many(jaxrnn.LSTMCell, jnp.float64),
                jaxrnn.Batches((x, y, lengths), 4)
                if k is None
                else jaxrnn.TBPTT(jaxrnn.Batches((x, y, lengths), 4), k),
                key=key(),
                epochs=3,
                optimizer=optax.sgd(0.1),
                verbose=False,
            )[0]
            for k in (None, 10)
        ]
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14),
            eqx.filter(runs[0], eqx.is_array),
            eqx.filter(runs[1], eqx.is_array),
        )


def test_streams_for_stateful_training():
    seq = jnp.arange(101)
    inputs, targets = jaxrnn.streams(seq, 4)
    assert inputs.shape == (4, 25)
    np.testing.assert_array_equal(inputs[1], np.arange(25, 50))
    np.testing.assert_array_equal(targets[1], np.arange(26, 51))


# ---- clipping ------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.1, 10.0])
def test_clipping_caps_the_norm_and_leaves_small_gradients(ratio):
    """Threshold = ratio * ||g||: above the threshold g is scaled to it, below it is unchanged."""
    with jax.enable_x64(True):
        x, y = running_sum_data(n=8, dtype=jnp.float64)
        model = many_to_many(dtype=jnp.float64)
        grads = eqx.filter(jax.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model), eqx.is_array)
        norm = float(optax.tree.norm(grads))
        opt = optax.chain(optax.clip_by_global_norm(ratio * norm), optax.sgd(1.0))
        trained, hist = jaxrnn.fit(model, jaxrnn.Batches((x, y), 8), key=key(), epochs=1, optimizer=opt, verbose=False)
        assert hist.grad_norm[0] == pytest.approx(norm, rel=1e-9)  # recorded before clipping
        step = jax.tree.map(lambda a, b: a - b, eqx.filter(model, eqx.is_array), eqx.filter(trained, eqx.is_array))
        np.testing.assert_allclose(float(optax.tree.norm(step)), min(ratio, 1.0) * norm, rtol=1e-9)
        factor = min(ratio, 1.0)
        jax.tree.map(lambda s, g: np.testing.assert_allclose(s, factor * g, rtol=1e-8, atol=1e-14), step, grads)


# ---- checkpoints and resume ------------------------------------------------------------------


def train(tmp_path, **kw):
    x, y = running_sum_data(n=24)
    model = jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(1), num_layers=2, dropout=0.3), jaxrnn.Head(H, 1, key=key(2))
    )
    schedule = optax.cosine_decay_schedule(1e-2, 20)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=schedule))
    args = dict(
        key=key(11),
        epochs=3,
        validation=(x[:5], y[:5]),
        optimizer=opt,
        steps_per_execution=4,
        verbose=False,
    )
    return jaxrnn.fit(model, jaxrnn.TBPTT(jaxrnn.Batches((x, y), 16), 4, 6), **{**args, **kw})


@pytest.mark.parametrize("stop_at,every", [(11, 2), (5, 3), (6, None)])
def test_resume_is_bit_for_bit(tmp_path, stop_at, every):
    """Interrupted inside a block of 4 updates, inside an epoch of 6 windows; dropout,
    validation, a schedule: the resumed run is the uninterrupted one, bit for bit."""
    path = str(tmp_path / "run.ckpt")
    full, hist_full = train(tmp_path)
    part, hist_part = train(tmp_path, callbacks=[ModelCheckpoint(path, every=every), MaxSteps(stop_at)])
    assert hist_part.steps == stop_at and hist_part.stop_reason == "max_steps"
    resumed, hist = train(tmp_path, callbacks=[ModelCheckpoint(path, every=every, resume=True)])
    assert hist.steps == hist_full.steps == 18
    jax.tree.map(np.testing.assert_array_equal, eqx.filter(full, eqx.is_array), eqx.filter(resumed, eqx.is_array))
    np.testing.assert_array_equal(hist.loss, hist_full.loss)
    np.testing.assert_array_equal(hist.learning_rate, hist_full.learning_rate)
    assert hist.epochs == hist_full.epochs


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "run.ckpt")
    train(tmp_path, callbacks=[ModelCheckpoint(path)], epochs=1)
    before = open(path, "rb").read()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.warns(RuntimeWarning, match="could not be written .disk full.; fit still returns the trained model"):
        model, hist = train(tmp_path, callbacks=[ModelCheckpoint(path, resume=True)], epochs=2)
    assert hist.steps == 2 * 2 * 3 and len(hist.epochs) == 2  # the second epoch ran and its model came back
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["run.ckpt"]  # no temporary file left behind


def test_same_key_same_run(tmp_path):
    _, ha = train(tmp_path, epochs=1, callbacks=[MaxSteps(6)])
    _, hb = train(tmp_path, epochs=1, callbacks=[MaxSteps(6)])
    _, hc = train(tmp_path, epochs=1, callbacks=[MaxSteps(6)], key=key(12))
    assert ha.loss == hb.loss and ha.loss != hc.loss


# ---- non-finite guard --------------------------------------------------------------------------


def test_nan_batch_is_skipped_and_model_stays_finite():
    x, y = running_sum_data(n=32)
    x = x.at[5, 3, 0].set(jnp.nan)  # one poisoned example: its batch's update is skipped
    model, hist = jaxrnn.fit(
        many_to_many(), jaxrnn.Batches((x, y), 8, shuffle=False), key=key(), epochs=2, verbose=False
    )
    assert hist.finite == [False, True, True, True] * 2 and hist.skipped == 2  # example 5 is in batch 0
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    assert hist.stopped is None


def test_too_many_non_finite_updates_stop_with_a_message():
    x, y = running_sum_data(n=32)
    x = x.at[:, 0, 0].set(jnp.inf)
    start = many_to_many()
    with pytest.warns(RuntimeWarning, match="stopped at step 3: 3 updates had a non-finite"):
        model, hist = jaxrnn.fit(
            start, jaxrnn.Batches((x, y), 8), key=key(), epochs=5, callbacks=[StopOnNonFinite(2)], verbose=False
        )
    assert hist.steps == 3
    jax.tree.map(np.testing.assert_array_equal, eqx.filter(model, eqx.is_array), eqx.filter(start, eqx.is_array))


# ---- validation, early stopping, callbacks ------------------------------------------------------


def test_early_stopping_and_callbacks():
    x, y = running_sum_data(n=32)
    seen = []
    model, hist = jaxrnn.fit(
        many_to_many(),
        jaxrnn.Batches((x, y), 16),
        key=key(),
        epochs=50,
        validation=(x, y + 5.0),
        optimizer=optax.adam(3e-2),
        verbose=False,
        callbacks=[EarlyStopping(2), LambdaCallback(lambda step, metrics, m: seen.append((step, metrics["val_loss"])))],
    )
    assert "early stopping" in hist.stopped and len(hist.epochs) < 50
    assert [s for s, _ in seen] == [2 * (i + 1) for i in range(len(hist.epochs))]
    _, hist2 = jaxrnn.fit(
        many_to_many(),
        jaxrnn.Batches((x, y), 16),
        key=key(),
        epochs=5,
        verbose=False,
        callbacks=[LambdaCallback(lambda step, metrics, m: step >= 4)],
    )
    assert len(hist2.epochs) == 2 and "callback" in hist2.stopped


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,batching,error,match",
    [
        (dict(loss="hinge"), {}, ValueError, "loss must be one of"),
        ({}, dict(batch_size=0), ValueError, r"batch_size must be an int >= 1, got 0"),
        ({}, dict(shuffle="yes"), TypeError, r"shuffle must be True or False, got 'yes'"),
        (dict(epochs=-1), {}, ValueError, "epochs must be an int >= 0"),
        (dict(validation=None, batch_size=8), {}, TypeError, "unexpected keyword argument 'batch_size'"),
    ],
)
def test_bad_arguments(kwargs, batching, error, match):
    x, y = running_sum_data(n=16)
    with pytest.raises(error, match=match):
        data = jaxrnn.Batches((x, y), **{"batch_size": 8, **batching})
        jaxrnn.fit(many_to_many(), data, key=key(), verbose=False, **kwargs)


def test_a_batch_size_above_the_data_size_is_one_batch_of_all_of_it():
    """As in Keras and PyTorch: 16 examples at batch_size 100 train as batch_size 16."""
    x, y = running_sum_data(n=16)
    a, ha = jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 100), key=key(), epochs=2, verbose=False)
    b, hb = jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 16), key=key(), epochs=2, verbose=False)
    assert ha.steps == 2 and ha.loss == hb.loss


def test_a_diverging_run_is_warned_of_once_and_a_healthy_one_not():
    x, y = running_sum_data(n=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy run warns of nothing
        jaxrnn.fit(
            many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), epochs=3, optimizer=optax.adam(1e-2), verbose=False
        )
    with pytest.warns(
        RuntimeWarning, match=r"rose from .* \(first update\) to .* \(the first update of epoch 2\)"
    ) as got:
        jaxrnn.fit(
            many_to_many(jaxrnn.SimpleRNNCell, out=1),
            jaxrnn.Batches((x, 100 * y), 8),
            key=key(),
            epochs=4,
            optimizer=optax.sgd(1.0),
            callbacks=[StopOnNonFinite(1000)],
            verbose=False,
        )
    assert len([w for w in got if "rose" in str(w.message)]) == 1  # once, not every epoch
    with pytest.raises(ValueError, match="WarnOnLossRise factor must be a number > 1"):
        jaxrnn.callbacks.WarnOnLossRise(1)


def test_bad_data_and_checkpoints(tmp_path):
    x, y = running_sum_data(n=16)
    with pytest.raises(ValueError, match="same number of examples, got 16 inputs and 15 targets"):
        jaxrnn.fit(many_to_many(), (x, y[:15]), key=key(), verbose=False)
    not_ckpt = tmp_path / "notes.txt"
    not_ckpt.write_text("my precious notes")
    with pytest.raises(ValueError, match="not a jaxrnn checkpoint"):
        ModelCheckpoint(str(not_ckpt), resume=True)
    assert not_ckpt.read_text() == "my precious notes"
    good = str(tmp_path / "good.ckpt")
    jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), callbacks=[ModelCheckpoint(good)], verbose=False)
    with pytest.raises(ValueError, match="exists: pass resume=True"):
        ModelCheckpoint(good)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(open(good, "rb").read()[:200])
    with pytest.raises(ValueError, match="corrupt"):
        ModelCheckpoint(str(corrupt), resume=True)
    with pytest.raises(ValueError, match="another model"):
        jaxrnn.fit(
            many_to_many(jaxrnn.LSTMCell),
            jaxrnn.Batches((x, y), 8),
            key=key(),
            callbacks=[ModelCheckpoint(good, resume=True)],
            verbose=False,
        )
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key()), jaxrnn.Head(H, 1, key=key()))
    with pytest.raises(ValueError, match="TBPTT needs a ManyToMany"):
        jaxrnn.fit(model, jaxrnn.TBPTT(jaxrnn.Batches((x, y[:, -1:]), 8), 4), key=key(), verbose=False)


def test_progress_bar_shows_epoch_loss_norm_and_throughput(capsys):
    x, y = running_sum_data(n=16)
    jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), epochs=2, callbacks=[ProgressBar()])
    err = capsys.readouterr().err
    assert "4/4" in err and "epoch=2" in err and "loss=" in err and "gnorm=" in err and "seq_s=" in err
    assert "compiling" in err  # said while the first block compiles
    assert "val_loss" not in err  # no validation: nothing shown for it, no nan


def test_without_a_terminal_fit_prints_a_line_per_epoch_and_no_bar(capsys):
    """stderr is not a terminal under pytest (as in ``python train.py 2>&1 | tee log``):
    the default display is one plain line per epoch, no carriage returns."""
    x, y = running_sum_data(n=16)
    jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), epochs=2, validation=(x, y))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "\r" not in err and len(lines) == 3, err
    assert lines[0].endswith("on 1 device; the first block compiles")
    assert lines[1].startswith("epoch 1/2: loss ") and "val_loss" in lines[1] and lines[2].startswith("epoch 2/2")
    jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), epochs=1, verbose=False)
    assert capsys.readouterr().err == ""
    jaxrnn.fit(
        many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), epochs=1, callbacks=[EpochPrinter()], verbose=False
    )
    assert "epoch 1/1" in capsys.readouterr().err  # a display given is kept whatever verbose says


def test_callbacks_are_objects_and_each_is_checked_when_made(tmp_path):
    x, y = running_sum_data(n=16)
    with pytest.raises(TypeError, match=r"callbacks must be jaxrnn.callbacks objects .* LambdaCallback\(f\)"):
        jaxrnn.fit(many_to_many(), jaxrnn.Batches((x, y), 8), key=key(), callbacks=[lambda *a: None])
    with pytest.raises(ValueError, match="EarlyStopping patience must be an int >= 1"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="ModelCheckpoint every must be an int >= 1 or None"):
        ModelCheckpoint(str(tmp_path / "c"), every=0)
    with pytest.raises(ValueError, match="MaxSteps limit must be an int >= 0"):
        MaxSteps(-1)
    with pytest.raises(ValueError, match="StopOnNonFinite limit must be an int >= 0"):
        StopOnNonFinite(-1)
    with pytest.raises(ValueError, match="CSVLogger path '/nonexistent/folder/log.csv': its folder does not exist"):
        CSVLogger("/nonexistent/folder/log.csv")
    with pytest.raises(TypeError, match="on_epoch_end must be a function"):
        LambdaCallback(3)
    with pytest.raises(ValueError, match="callbacks hold 2 StopOnNonFinite"):
        jaxrnn.fit(many_to_many(), (x, y), key=key(), callbacks=[StopOnNonFinite(), StopOnNonFinite(3)])


def test_a_callback_of_ones_own_sees_every_block_and_epoch_and_can_stop():
    class Recorder(jaxrnn.callbacks.Callback):
        def __init__(self):
            self.events = []

        def boundary(self, step):
            return 3 if step < 3 else None  # a block must end after update 3

        def on_train_begin(self, run):
            self.events.append(("begin", run.step, run.total_steps))

        def on_block_end(self, run, seconds):
            self.events.append(("block", run.step))

        def on_epoch_end(self, run, metrics, seconds):
            self.events.append(("epoch", run.step, round(metrics["loss"], 6) == round(metrics["loss"], 6)))
            if run.epoch == 1:
                return jaxrnn.callbacks.Stop("mine", "enough")
            return None

        def on_train_end(self, run, stop):
            self.events.append(("end", stop.kind))

    x, y = running_sum_data(n=32)
    rec = Recorder()
    _, hist = jaxrnn.fit(
        many_to_many(),
        jaxrnn.Batches((x, y), 8),
        key=key(),
        epochs=5,
        steps_per_execution=4,
        callbacks=[rec],
        verbose=False,
    )
    assert rec.events == [
        ("begin", 0, 20), ("block", 3), ("block", 4), ("epoch", 4, True),
        ("block", 8), ("epoch", 8, True), ("end", "mine"),
    ]  # fmt: skip
    assert hist.stop_reason == "mine" and hist.steps == 8


def test_remat_on_every_layer_gives_the_same_run():
    x, y = running_sum_data(n=16)
    model = jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=key(1), num_layers=2), jaxrnn.Head(H, 1, key=key(2))
    )
    assert all(layer.remat for layer in jaxrnn.layers.with_remat(model).rnn.layers)
    a, ha = jaxrnn.fit(model, jaxrnn.Batches((x, y), 8), key=key(), epochs=1, verbose=False)
    b, hb = jaxrnn.fit(jaxrnn.layers.with_remat(model), jaxrnn.Batches((x, y), 8), key=key(), epochs=1, verbose=False)
    assert all(layer.remat for layer in b.rnn.layers)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-5)
    for u, v in zip(jax.tree.leaves(eqx.filter(a, eqx.is_array)), jax.tree.leaves(eqx.filter(b, eqx.is_array))):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


# ---- compiler options --------------------------------------------------------------------------


def test_cpu_options_shorten_the_loops_and_change_no_bit(monkeypatch):
    from jaxrnn.train import cpu_options

    layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(F, H, key=key(1)))
    x = jax.random.normal(key(2), (4, 12, F))
    grad = jax.jit(jax.grad(lambda m: jnp.sum(m(x)[1][0] ** 2)))
    copies = [
        grad.lower(layer).compile(compiler_options=o).as_text().count(" copy(") for o in ({}, cpu_options.CPU_OPTIONS)
    ]
    assert copies[1] < copies[0]  # the option is accepted and acts on the layer's loops

    def run():
        model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=key(4)), jaxrnn.Head(H, 1, key=key(5)))
        xs, ys = running_sum_data(n=48)
        model, hist = jaxrnn.fit(model, jaxrnn.Batches((xs, ys[:, -1]), 16), key=key(6), epochs=2, verbose=False)
        return model, hist

    with_options, h1 = run()
    monkeypatch.setattr(cpu_options, "CPU_OPTIONS", {})
    without, h2 = run()
    assert h1.loss == h2.loss
    for a, b in zip(
        jax.tree.leaves(eqx.filter(with_options, eqx.is_array)), jax.tree.leaves(eqx.filter(without, eqx.is_array))
    ):
        np.testing.assert_array_equal(a, b)


def test_a_second_fit_of_the_same_model_and_shapes_compiles_nothing():
    """The block of updates and the validation are compiled by the first fit only: a
    second fit (a new model of the same architecture, new data of the same shapes, the
    default optimizer or the same optimizer object) runs without one XLA compilation,
    by whole-sequence batches and by TBPTT windows. The history's compile seconds are
    the compilations' durations JAX reports while fit runs."""
    from jax import monitoring

    compiles = []
    monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(secs) if name.endswith("backend_compile_duration") else None
    )
    x, y = running_sum_data(n=19)  # a size no other test uses: the first fit here compiles
    adam = optax.adam(1e-2)
    for data, optimizer in [
        (lambda x, y: jaxrnn.Batches((x, y), 8), None),
        (lambda x, y: jaxrnn.TBPTT(jaxrnn.Batches((x, y), 8), 4), adam),
    ]:
        for run in range(2):
            xr, yr = x + run, y - run  # other values, the same shapes
            args = dict(key=key(run), epochs=2, validation=(xr[:5], yr[:5]), verbose=False)
            model, batches = many_to_many(), data(xr, yr)
            compiles.clear()  # what building them compiled is not fit's
            _, hist = jaxrnn.fit(model, batches, optimizer=optimizer, **args)
            assert (len(compiles) > 0) if run == 0 else compiles == []
            assert hist.compile_seconds == pytest.approx(sum(compiles), rel=1e-9, abs=1e-12)
