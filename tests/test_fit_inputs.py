"""fit on the inputs users give: each bad one is a clear error before any update (naming the
argument, what was given and what was expected), or it works as a user would expect;
a NaN never reaches the parameters, whatever its source."""

import os
import tempfile
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn.callbacks import EarlyStopping, ModelCheckpoint, StopOnNonFinite
from jaxrnn.train import step as train_step

F, H, T = 3, 8, 6


def data(n=16, C=3):
    x = jax.random.normal(key(1), (n, T, F))
    y = jax.random.randint(key(2), (n, T), 0, C)
    lengths = jnp.asarray(np.random.default_rng(0).integers(2, T + 1, n))
    return x, y, lengths


def tagger(C=3, **kw):
    return jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(3), **kw), jaxrnn.Head(H, C, key=key(4)))


def params(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_array))


@pytest.fixture
def no_update(monkeypatch):
    """Fails the test if any block of updates runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("an update ran before the error")

    monkeypatch.setattr(train_step.Block, "__call__", refuse)


# ---- errors before any update -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(optimizer="adam"), TypeError, r"optimizer must be an optax.GradientTransformation, got 'adam' \(build"),
        (dict(optimizer=optax.adam), TypeError, r"optimizer must be .*\(call it: adam\(learning_rate\)\)"),
        (dict(optimizer=optax.adam(float("nan"))), ValueError, "optimizer gives non-finite updates"),
        (dict(optimizer=optax.sgd(float("inf"))), ValueError, "learning rate .* is NaN or infinite"),
        (dict(key=None), TypeError, r"key must be a PRNG key .* got None"),
        (dict(key=0), TypeError, "key must be a PRNG key"),
        (dict(epochs=True), ValueError, r"epochs must be an int >= 0, got True"),
        (dict(steps_per_execution=0), ValueError, r"steps_per_execution must be an int >= 1"),
        (dict(callbacks=[print]), TypeError, r"callbacks must be jaxrnn.callbacks objects"),
    ],
)
def test_bad_arguments_name_themselves_before_any_update(no_update, kwargs, error, match):
    x, y, lengths = data()
    args = {"key": key(), "loss": "cross_entropy", **kwargs}
    with pytest.raises(error, match=match):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, y, lengths), 8), **args)


@pytest.mark.parametrize(
    "targets,error,match",
    [
        (lambda y: y.at[3, 1].set(3), ValueError, r"data: class ids must lie in \[0, 3\).*got 3 at index \(3, 1\)"),
        (lambda y: y.at[0, 0].set(-1), ValueError, r"data: class ids must lie in \[0, 3\).*got -1 at index \(0, 0\)"),
        (lambda y: y.astype(jnp.float32) + 0.7, TypeError, "data: cross_entropy targets must be integer class ids"),
        (lambda y: y[:, :4], ValueError, r"data: cross_entropy: targets must be class ids of shape \(8, 6\)"),
    ],
)
def test_bad_class_ids_are_named_before_any_update(no_update, targets, error, match):
    x, y, lengths = data()
    lengths = jnp.full(16, T)
    with pytest.raises(error, match=match):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, targets(y), lengths), 8), key=key(), loss="cross_entropy")


def test_loss_on_last_needs_one_output_per_step(no_update):
    x, _, _ = data()
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(3)), jaxrnn.Head(H, 1, key=key(4)))
    last = jaxrnn.Loss(on="last")
    with pytest.raises(ValueError, match=r"data: Loss\(on='last'\) needs one output per step .* gives \(8, 1\)"):
        jaxrnn.fit(model, jaxrnn.Batches((x, jnp.ones((16, 1))), 8), key=key(), loss=last)
    with pytest.raises(ValueError, match=r"Loss\(on='last'\) needs one output per step"):
        jaxrnn.evaluate(model, (x, jnp.ones((16, 1))), loss=last)


def test_bad_validation_is_found_before_any_update(no_update):
    x, y, lengths = data()
    with pytest.raises(ValueError, match=r"validation: cross_entropy: targets must be class ids of shape"):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, y), 8), key=key(), loss="cross_entropy", validation=(x, y[:, :2]))
    with pytest.raises(ValueError, match=r"validation: xs has 2 features in its last axis, expected 3"):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, y), 8), key=key(), loss="cross_entropy", validation=(x[..., :2], y))
    with pytest.raises(ValueError, match=r"validation: class ids must lie in \[0, 3\)"):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, y), 8), key=key(), loss="cross_entropy", validation=(x, y + 5))
    with pytest.raises(ValueError, match=r"validation: lengths must lie in \[0, 6\]"):
        jaxrnn.fit(tagger(), jaxrnn.Batches((x, y), 8), key=key(), loss="cross_entropy", validation=(x, y, lengths + 3))


def test_unwritable_checkpoint_folder_is_found_before_any_update(no_update, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    x, y, lengths = data()
    with pytest.raises(OSError, match="cannot write in its folder .Permission denied"):
        ModelCheckpoint(str(tmp_path / "c"))


# ---- inputs that work as a user would expect ------------------------------------------------------------


def test_padding_past_the_lengths_is_ignored_whatever_it_holds():
    x, y, lengths = data()
    past = np.arange(T)[None, :] >= np.asarray(lengths)[:, None]
    runs = {}
    for name, fill_y, fill_x in (("zeros", 0, 0.0), ("ignore_index", -100, np.nan)):
        yy = np.where(past, fill_y, np.asarray(y))
        xx = np.where(past[..., None], fill_x, np.asarray(x))
        runs[name] = jaxrnn.fit(
            tagger(), jaxrnn.TBPTT(jaxrnn.Batches((xx, yy, lengths), 8), 4), key=key(), loss="cross_entropy", epochs=2
        )
    (a, ha), (b, hb) = runs["zeros"], runs["ignore_index"]
    assert ha.loss == hb.loss and all(ha.finite)
    jax.tree.map(np.testing.assert_array_equal, params(a), params(b))
    targets = jnp.where(past[..., None], jnp.nan, jax.random.normal(key(5), (16, T, 2)))
    _, hist = jaxrnn.fit(tagger(C=2), jaxrnn.Batches((x, targets, lengths), 8), key=key())
    assert all(np.isfinite(hist.loss))


def test_every_update_skipped_ends_with_a_warning_not_a_crash():
    x, y, lengths = data()
    start = tagger()
    with pytest.warns(RuntimeWarning, match="stopped at step 3: 3 updates had a non-finite"):
        model, hist = jaxrnn.fit(
            start,
            jaxrnn.Batches((x * jnp.nan, y), 8),
            key=key(),
            loss="cross_entropy",
            epochs=3,
            callbacks=[StopOnNonFinite(2)],
        )
    assert hist.steps == 3 and not any(hist.finite) and hist.stop_reason == "non_finite"
    assert np.isnan(hist.epochs[0]["loss"])  # the first epoch ran, with no finite update to average
    jax.tree.map(np.testing.assert_array_equal, params(start), params(model))


def test_a_learning_rate_that_turns_nan_never_reaches_the_parameters():
    x, y, lengths = data()
    schedule = lambda count: jnp.where(count < 3, 1e-2, jnp.nan)  # noqa: E731
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=schedule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model, hist = jaxrnn.fit(
            tagger(),
            jaxrnn.Batches((x, y), 4),
            key=key(),
            loss="cross_entropy",
            epochs=3,
            optimizer=opt,
            callbacks=[StopOnNonFinite(5)],
        )
    assert hist.finite == [True] * 3 + [False] * 6 and hist.stop_reason == "non_finite"
    assert all(np.isfinite(np.asarray(p)).all() for p in params(model))


def test_dropout_between_layers_with_validation_and_early_stopping():
    x, y, lengths = data()
    model, hist = jaxrnn.fit(
        tagger(num_layers=2, dropout=0.3),
        jaxrnn.Batches((x, y, lengths), 8),
        key=key(),
        loss="cross_entropy",
        epochs=3,
        validation=(x, y, lengths),
        callbacks=[EarlyStopping(5)],
    )
    assert len(hist.epochs) == 3 and all(np.isfinite(e["val_loss"]) for e in hist.epochs)
    want = jaxrnn.evaluate(model, (x, y, lengths), loss="cross_entropy")["loss"]
    assert hist.epochs[-1]["val_loss"] == pytest.approx(want, rel=1e-6)  # validation ran without dropout


def test_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "run.ckpt"
    stale = tmp_path / ".run.ckpt.tmp-k1ll3d"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".other.ckpt.tmp-keep"
    other.write_bytes(b"another run's")
    x, y, lengths = data()
    jaxrnn.fit(
        tagger(), jaxrnn.Batches((x, y), 8), key=key(), loss="cross_entropy", callbacks=[ModelCheckpoint(str(path))]
    )
    assert sorted(os.listdir(tmp_path)) == [".other.ckpt.tmp-keep", "run.ckpt"]


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(on="first"), ValueError, r"Loss: on must be 'all' or 'last', got 'first'"),
        (dict(reduction="max"), ValueError, r"Loss: reduction must be 'mean' or 'sum', got 'max'"),
        (dict(metrics=["f1"]), ValueError, r"metrics must be names from .*unknown \['f1'\]"),
        (dict(metrics="accuracy"), TypeError, r"metrics must be a list of names"),
        (dict(fn="mse", metrics=["perplexity"]), ValueError, r"need loss='cross_entropy'"),
        (dict(fn="hinge"), ValueError, "loss must be one of"),
    ],
)
def test_a_bad_loss_object_names_its_field_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxrnn.Loss(**kwargs)


def test_fit_validation_and_evaluate_report_the_same_loss_object():
    """One Loss for all three: fit's last validation equals evaluate on the same data with it."""
    x, y, lengths = data()
    loss = jaxrnn.Loss("cross_entropy", on="last", reduction="sum", metrics=["accuracy", "perplexity"])
    model, history = jaxrnn.fit(
        tagger(), jaxrnn.Batches((x, y, lengths), 8), key=key(), loss=loss, validation=(x, y, lengths), verbose=False
    )
    got = jaxrnn.evaluate(model, (x, y, lengths), loss=loss)
    assert set(got) == {"loss", "accuracy", "perplexity"}
    for name, value in got.items():
        assert history.epochs[-1][f"val_{name}"] == pytest.approx(value, rel=1e-5)
    assert loss == jaxrnn.Loss("cross_entropy", on="last", reduction="sum", metrics=("accuracy", "perplexity"))
