"""evaluate, predict, save/load, metrics, binary cross-entropy, the CSV log and per-epoch lines,
each against an independent reference (numpy by hand, the jitted model batch by batch)."""

import csv
import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn.callbacks import CSVLogger, MaxSteps, ModelCheckpoint, ProgressBar

F, H = 3, 8


def classifier_data(n=20, T=6, C=4):
    x = jax.random.normal(key(1), (n, T, F))
    y = jax.random.randint(key(2), (n, T), 0, C)
    lengths = jnp.asarray(np.random.default_rng(0).integers(1, T + 1, n))
    return x, y, lengths


def tagger(C=4, cell=jaxrnn.LSTMCell, **kw):
    return jaxrnn.ManyToMany(jaxrnn.make_rnn(cell, F, H, key=key(3), **kw), jaxrnn.Head(H, C, key=key(4)))


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# ---- predict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 20, 64])
def test_predict_equals_the_jitted_model_on_each_batch(batch_size):
    x, _, lengths = classifier_data()
    model = tagger(num_layers=2, dropout=0.5)  # dropout must be off in predict
    got = jaxrnn.predict(model, x, lengths=lengths, batch_size=batch_size)
    call = jax.jit(lambda m, x, n: m(x, lengths=n, inference=True))
    want = [call(model, x[i : i + batch_size], lengths[i : i + batch_size]) for i in range(0, 20, batch_size)]
    np.testing.assert_allclose(got, np.concatenate(want), rtol=1e-6, atol=1e-6)
    assert got.shape == (20, 6, 4)


def test_predict_of_a_many_to_one_and_an_encoder_decoder():
    x, _, lengths = classifier_data()
    clf = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(5)), jaxrnn.Head(H, 2, key=key(6)))
    np.testing.assert_allclose(
        jaxrnn.predict(clf, x, lengths=lengths, batch_size=8), clf(x, lengths=lengths), rtol=1e-5, atol=1e-6
    )
    V = 5
    dec = jaxrnn.Decoder(jaxrnn.GRUCell(V, H, key=key(7)), jaxrnn.Head(H, V, key=key(8)), vocab_size=V)
    s2s = jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(9)), dec)
    tokens = jaxrnn.predict(s2s, x, lengths=lengths, batch_size=6, steps=4)
    np.testing.assert_array_equal(tokens, s2s.generate(x, 4, lengths=lengths)[0])


def test_predict_rejects_what_it_cannot_run():
    with pytest.raises(TypeError, match="has no infer method"):
        jaxrnn.predict(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key()), jnp.ones((2, 3, F)))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        jaxrnn.predict(tagger(), jnp.ones((2, 3, F)), batch_size=0)


# ---- evaluate --------------------------------------------------------------------------------------


def test_evaluate_cross_entropy_and_metrics_equal_numpy_by_hand():
    x, y, lengths = classifier_data()
    y = np.asarray(y).copy()
    y[np.arange(6)[None, :] >= np.asarray(lengths)[:, None]] = -100  # padding ids past the lengths
    model = tagger()
    got = jaxrnn.evaluate(
        model,
        (x, y, lengths),
        loss=jaxrnn.Loss("cross_entropy", metrics=["accuracy", "perplexity", "bits_per_char"]),
        batch_size=7,
    )
    logits = np.asarray(model(x, lengths=lengths), np.float64)
    valid = np.arange(6)[None, :] < np.asarray(lengths)[:, None]
    logp = log_softmax(logits)
    b, t = np.nonzero(valid)
    ce = -logp[b, t, y[b, t]]
    assert got["loss"] == pytest.approx(ce.mean(), rel=1e-5)
    assert got["accuracy"] == pytest.approx((logits[b, t].argmax(-1) == y[b, t]).mean(), rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.exp(ce.mean()), rel=1e-5)
    assert got["bits_per_char"] == pytest.approx(ce.mean() / math.log(2), rel=1e-5)


def test_evaluate_mse_last_step_and_sum_reduction_by_hand():
    x, _, lengths = classifier_data()
    targets = jax.random.normal(key(10), (20, 6, 2))
    model = tagger(C=2, cell=jaxrnn.GRUCell)
    logits = np.asarray(model(x, lengths=lengths), np.float64)
    sq = ((logits - np.asarray(targets)) ** 2).mean(-1)
    valid = np.arange(6)[None, :] < np.asarray(lengths)[:, None]
    last = np.asarray(lengths) - 1
    data = (x, targets, lengths)
    assert jaxrnn.evaluate(model, data)["loss"] == pytest.approx(sq[valid].mean(), rel=1e-5)
    summed = jaxrnn.evaluate(model, data, loss=jaxrnn.Loss(reduction="sum"))["loss"]
    assert summed == pytest.approx((sq * valid).sum(1).mean(), rel=1e-5)
    want_last = sq[np.arange(20), last].mean()
    on_last = jaxrnn.evaluate(model, data, loss=jaxrnn.Loss(on="last"), batch_size=3)["loss"]
    assert on_last == pytest.approx(want_last, rel=1e-5)


def test_binary_cross_entropy_and_its_accuracy_by_hand():
    x = jax.random.normal(key(11), (30, 5, F))
    t = (jax.random.uniform(key(12), (30, 3)) > 0.5).astype(jnp.float32)
    model = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=key(13)), jaxrnn.Head(H, 3, key=key(14), activation="sigmoid")
    )
    z = np.asarray(model(x), np.float64)
    p = 1 / (1 + np.exp(-z))
    bce = -(np.asarray(t) * np.log(p) + (1 - np.asarray(t)) * np.log(1 - p)).mean(-1)
    got = jaxrnn.evaluate(model, (x, t), loss=jaxrnn.Loss("binary_cross_entropy", metrics=["accuracy"]))
    assert got["loss"] == pytest.approx(bce.mean(), rel=1e-5)
    assert got["accuracy"] == pytest.approx(((z > 0) == (np.asarray(t) > 0.5)).all(-1).mean())
    trained, hist = jaxrnn.fit(
        model, jaxrnn.Batches((x, t), 10), key=key(), loss="binary_cross_entropy", epochs=30, optimizer=optax.adam(1e-2)
    )
    assert hist.epochs[-1]["loss"] < 0.7 * hist.epochs[0]["loss"]


def test_fit_metrics_for_a_language_model():
    x, y, lengths = classifier_data(n=32)
    _, hist = jaxrnn.fit(
        tagger(),
        jaxrnn.TBPTT(jaxrnn.Batches((x, y, lengths), 8), 3),
        key=key(),
        loss=jaxrnn.Loss("cross_entropy", metrics=["perplexity", "bits_per_char"]),
        validation=(x[:8], y[:8], lengths[:8]),
        epochs=2,
    )
    for e in hist.epochs:
        assert set(e) == {"loss", "perplexity", "bits_per_char", "val_loss", "val_perplexity", "val_bits_per_char"}
        for prefix in ("", "val_"):
            assert e[prefix + "perplexity"] == pytest.approx(math.exp(e[prefix + "loss"]), rel=1e-5)
            assert e[prefix + "bits_per_char"] == pytest.approx(e[prefix + "loss"] / math.log(2), rel=1e-5)


def test_validation_in_fit_equals_evaluate_of_the_returned_model():
    x, y, lengths = classifier_data(n=32)
    val = (x[:9], y[:9], lengths[:9])
    model, hist = jaxrnn.fit(
        tagger(), jaxrnn.Batches((x, y, lengths), 8), key=key(), loss="cross_entropy", validation=val
    )
    got = jaxrnn.evaluate(model, val, loss="cross_entropy")
    assert hist.epochs[-1]["val_loss"] == pytest.approx(got["loss"], rel=1e-6)
    assert hist.epochs[-1]["val_accuracy"] == pytest.approx(got["accuracy"], rel=1e-6)


# ---- save / load -----------------------------------------------------------------------------------


def every_model():
    k = iter(jax.random.split(key(20), 40))
    V = 6
    yield jaxrnn.ManyToOne(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=next(k), num_layers=2, bidirectional=True, dropout=0.2),
        jaxrnn.Head(2 * H, 3, key=next(k), activation="softmax"),
    )
    yield jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=next(k), layer_norm=True, remat=True), jaxrnn.Head(H, 2, key=next(k))
    )
    yield jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.SimpleRNNCell, F, H, key=next(k), activation="relu", merge="sum", bidirectional=True),
        jaxrnn.Head(H, 1, key=next(k)),
    )
    yield jaxrnn.ManyToOne(
        jaxrnn.make_rnn(jaxrnn.ResetBeforeGRUCell, F, H, key=next(k)), jaxrnn.Head(H, 1, key=next(k))
    )
    dec = jaxrnn.Decoder(jaxrnn.GRUCell(2, H, key=next(k)), jaxrnn.Head(H, 2, key=next(k)))
    yield jaxrnn.OneToMany(dec, 4, condition="state", key=next(k))
    dec = jaxrnn.Decoder(jaxrnn.LSTMCell(2 + 4, H, key=next(k)), jaxrnn.Head(H, 2, key=next(k)), context_size=4)
    yield jaxrnn.OneToMany(dec, 4, condition="input", key=next(k))
    dec = jaxrnn.Decoder(
        jaxrnn.LSTMCell(V, H, key=next(k)), jaxrnn.Head(H, V, key=next(k)), vocab_size=V, start_token=2
    )
    yield jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=next(k)), dec)
    yield jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=next(k), num_layers=3, forget_bias=2.0)


@pytest.mark.parametrize("model", list(every_model()), ids=lambda m: type(m).__name__)
def test_load_of_save_is_the_model_leaf_for_leaf_without_a_template(tmp_path, model):
    path = str(tmp_path / "model.npz")
    jaxrnn.save(path, model)
    loaded = jaxrnn.load(path)
    assert type(loaded) is type(model)
    assert jax.tree.structure(loaded) == jax.tree.structure(model)  # static fields included
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    if isinstance(model, jaxrnn.ManyToOne | jaxrnn.ManyToMany):
        x = jax.random.normal(key(), (2, 5, F))
        np.testing.assert_array_equal(model(x, inference=True), loaded(x, inference=True))


def test_load_of_a_fit_checkpoint_gives_its_model(tmp_path):
    x, y, lengths = classifier_data(n=16)
    path = str(tmp_path / "run.ckpt")
    trained, _ = jaxrnn.fit(
        tagger(), jaxrnn.Batches((x, y, lengths), 8), key=key(), loss="cross_entropy", callbacks=[ModelCheckpoint(path)]
    )
    loaded = jaxrnn.load(path)
    assert jax.tree.structure(loaded) == jax.tree.structure(trained)
    jax.tree.map(np.testing.assert_array_equal, trained, loaded)


def test_predict_gives_logits_probabilities_or_classes():
    x, y, lengths = classifier_data()
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(3)), jaxrnn.Head(H, 4, key=key(4)))
    logits = np.asarray(jaxrnn.predict(model, x, lengths=lengths))
    probs = np.asarray(jaxrnn.predict(model, x, lengths=lengths, output="probabilities"))
    classes = np.asarray(jaxrnn.predict(model, x, lengths=lengths, output="classes"))
    np.testing.assert_allclose(probs, np.exp(log_softmax(logits)), rtol=1e-5)
    np.testing.assert_array_equal(classes, logits.argmax(-1))
    binary = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(3)), jaxrnn.Head(H, 1, key=key(4)))
    one = np.asarray(jaxrnn.predict(binary, x))
    np.testing.assert_allclose(jaxrnn.predict(binary, x, output="probabilities"), 1 / (1 + np.exp(-one)), rtol=1e-5)
    np.testing.assert_array_equal(jaxrnn.predict(binary, x, output="classes"), (one[:, 0] > 0).astype(int))
    with pytest.raises(ValueError, match=r"output must be one of \('logits', 'probabilities', 'classes'\)"):
        jaxrnn.predict(model, x, output="labels")


def test_evaluate_names_its_default_loss_when_the_targets_are_class_ids():
    x, y, lengths = classifier_data()
    with pytest.raises(ValueError, match=r"'mse' is evaluate's default loss: pass the loss the model is trained with"):
        jaxrnn.evaluate(tagger(), (x, y, lengths))
    assert np.isfinite(jaxrnn.evaluate(tagger(), (x, y, lengths), loss="cross_entropy")["loss"])


def test_a_missing_file_is_named_as_missing_and_files_get_the_users_umask(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint '.*nowhere.npz' does not exist"):
        jaxrnn.load(str(tmp_path / "nowhere.npz"))
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.npz"
        jaxrnn.save(str(path), tagger())
        assert path.stat().st_mode & 0o777 == 0o644  # 0666 less the umask, as open() gives; not 0600
    finally:
        os.umask(old)


def test_save_refuses_what_it_cannot_describe_and_load_what_it_cannot_read(tmp_path):
    cell = jaxrnn.SimpleRNNCell(F, H, key=key(), activation=lambda a: a)
    with pytest.raises(TypeError, match=r"model.cell.activation: a function cannot be saved"):
        jaxrnn.save(str(tmp_path / "m.npz"), jaxrnn.Recurrent(cell))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    with pytest.raises(ValueError, match="not a jaxrnn checkpoint"):
        jaxrnn.load(str(notes))
    assert notes.read_text() == "not a model"


# ---- the CSV log, the per-epoch line, the learning rate under a schedule ----------------------------


def test_csv_log_holds_one_row_per_epoch_also_after_a_resume(tmp_path):
    x, y, lengths = classifier_data(n=16)
    log, path = str(tmp_path / "log.csv"), str(tmp_path / "run.ckpt")
    args = dict(key=key(), loss="cross_entropy", validation=(x[:4], y[:4], lengths[:4]))
    data = jaxrnn.Batches((x, y, lengths), 8)
    part = [ModelCheckpoint(path, every=1), MaxSteps(3), CSVLogger(log)]
    jaxrnn.fit(tagger(), data, epochs=3, callbacks=part, **args)
    _, hist = jaxrnn.fit(
        tagger(), data, epochs=3, callbacks=[ModelCheckpoint(path, resume=True), CSVLogger(log)], **args
    )
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    for row, e in zip(rows, hist.epochs):
        assert {k: float(row[k]) for k in e} == pytest.approx(e, rel=1e-12)
        assert float(row["seconds"]) > 0


def test_progress_shows_averages_sequences_validation_and_a_line_per_epoch(capsys):
    x, y, lengths = classifier_data(n=16)
    _, hist = jaxrnn.fit(
        tagger(),
        jaxrnn.TBPTT(jaxrnn.Batches((x, y, lengths), 8), 2),
        key=key(),
        loss="cross_entropy",
        epochs=2,
        validation=(x[:4], y[:4], lengths[:4]),
        callbacks=[ProgressBar()],
    )
    err = capsys.readouterr().err
    assert "loss=" in err and "gnorm=" in err and "seq_s=" in err and "val_loss=" in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_loss" in line and "accuracy" in line for line in lines)
    compiled = f"; fit has compiled for {hist.compile_seconds:.1f} s)"  # the first line only
    assert lines[0].endswith(compiled) and "compiled" not in lines[1]


def test_learning_rate_is_recorded_under_a_schedule():
    x, y, lengths = classifier_data(n=16)
    schedule = optax.linear_schedule(1e-2, 1e-3, 5)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=schedule))
    _, hist = jaxrnn.fit(
        tagger(), jaxrnn.Batches((x, y, lengths), 4), key=key(), loss="cross_entropy", epochs=2, optimizer=opt
    )
    np.testing.assert_allclose(hist.learning_rate, [float(schedule(i)) for i in range(8)], rtol=1e-6)


def test_blocks_of_any_size_train_the_same_model():
    x, y, lengths = classifier_data(n=40)
    runs = [
        jaxrnn.fit(
            tagger(),
            jaxrnn.Batches((x, y, lengths), 8),
            key=key(),
            loss="cross_entropy",
            epochs=2,
            steps_per_execution=k,
        )
        for k in (1, 3, None)
    ]
    for model, hist in runs[1:]:
        np.testing.assert_allclose(hist.loss, runs[0][1].loss, rtol=1e-5)
        for a, b in zip(jax.tree.leaves(eqx.filter(model, eqx.is_array)), jax.tree.leaves(runs[0][0])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_plans_count_each_sequence_once_per_batch_and_skip_windows_past_every_end():
    from jaxrnn.data.batches import batch_indices
    from jaxrnn.train.plans import Sequences, Windows

    lengths = np.array([6, 2, 2, 5, 1, 2, 3])
    order = batch_indices(7, 3, None, 0)  # batches [0 1 2] [3 4 5] [6 -1 -1]
    windows = Windows(4, 6, 2, 3, None).plan(order, lengths)
    # windows of 2 steps: batch 0 reaches step 6 (3 windows), batch 1 step 5 (3), batch 2 step 3 (2)
    assert windows.window.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert windows.real.tolist() == [3, 0, 0, 3, 0, 0, 1, 0] and windows.real.sum() == 7
    assert windows.idx.shape == (8, 4) and windows.idx[6].tolist() == [6, -1, -1, -1]
    whole = Sequences(3, None, None).plan(order, lengths)
    assert whole.real.tolist() == [3, 3, 1] and whole.window.tolist() == [0, 0, 0]
