"""An unattended run either trains what was asked or says why not: the silent failures a
new user's trial found (reused callbacks, resumes, splits, evaluation, skipped updates,
lengths, the default loss), each tested against what a Keras or PyTorch user expects."""

import importlib
import types
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn import datasets
from jaxrnn.callbacks import EarlyStopping, MaxSteps, ModelCheckpoint, StopOnNonFinite

F, H, C = 3, 8, 3


def classifier(cell=jaxrnn.GRUCell, seed=1):
    k1, k2 = jax.random.split(key(seed))
    return jaxrnn.ManyToOne(jaxrnn.make_rnn(cell, F, H, key=k1), jaxrnn.Head(H, C, key=k2))


def class_data(n=48, T=6, seed=3):
    x = jax.random.normal(key(seed), (n, T, F))
    y = (jnp.argmax(x[:, :, :C].sum(1), axis=1)).astype(jnp.int32)
    return x, y


def arrays(model):
    return eqx.filter(model, eqx.is_array)


def same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(arrays(a)), jax.tree.leaves(arrays(b))))


FIT = dict(loss="cross_entropy", verbose=False)


# 1 ---------------------------------------------------------------------------------------------


def test_a_reused_early_stopping_starts_each_fit_afresh():
    """Keras resets a callback when training begins: the second fit with the same object is
    the fit a fresh object gives, not one that stops at once on the first run's best."""
    x, y = class_data()
    es = EarlyStopping(1)
    first, _ = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), key=key(), epochs=6, callbacks=[es], validation=(x, y), **FIT
    )
    second_model = classifier(jaxrnn.LSTMCell, seed=5)
    args = dict(key=key(7), epochs=4, validation=(x, y), optimizer=optax.sgd(1e-3), **FIT)
    reused, h_reused = jaxrnn.fit(second_model, jaxrnn.Batches((x, y), 16), callbacks=[es], **args)
    fresh, h_fresh = jaxrnn.fit(second_model, jaxrnn.Batches((x, y), 16), callbacks=[EarlyStopping(1)], **args)
    assert type(reused.rnn.layers[0].cell) is jaxrnn.LSTMCell  # not the first run's model
    assert same(reused, fresh) and h_reused.epochs == h_fresh.epochs and h_reused.stopped == h_fresh.stopped


def test_one_callback_object_twice_in_a_list_is_refused():
    x, y = class_data()
    es = EarlyStopping(2)
    with pytest.raises(ValueError, match="callbacks hold the same EarlyStopping object twice"):
        jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), key=key(), callbacks=[es, es], **FIT)


# 2 ---------------------------------------------------------------------------------------------


def test_a_reused_checkpoint_object_neither_overwrites_nor_forgets_to_resume(tmp_path):
    x, y = class_data()
    path = str(tmp_path / "run.ckpt")
    mc = ModelCheckpoint(path)
    jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), key=key(), epochs=1, callbacks=[mc], **FIT)
    before = open(path, "rb").read()
    with pytest.raises(ValueError, match="exists: pass resume=True"):
        jaxrnn.fit(classifier(jaxrnn.LSTMCell), jaxrnn.Batches((x, y), 16), key=key(), epochs=1, callbacks=[mc], **FIT)
    assert open(path, "rb").read() == before  # the first run's checkpoint is kept

    resumable = str(tmp_path / "resumable.ckpt")
    mc = ModelCheckpoint(resumable, resume=True)
    args = dict(key=key(), epochs=3, **FIT)
    full, h_full = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), **args)
    _, h_part = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), callbacks=[mc, MaxSteps(4)], **args)
    assert h_part.steps == 4
    resumed, h_resumed = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), callbacks=[mc], **args
    )  # the same object resumes
    assert h_resumed.steps == h_full.steps == 9 and same(resumed, full)
    np.testing.assert_array_equal(h_resumed.loss, h_full.loss)


# 3 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (-1, ValueError, r"data: class ids must lie in \[0, 3\).*got -1 at index \(5,\)"),
        (C, ValueError, r"data: class ids must lie in \[0, 3\).*got 3 at index \(5,\)"),
        (1.7, TypeError, "data: cross_entropy targets must be integer class ids, got dtype float32"),
    ],
)
def test_evaluate_checks_class_ids_as_fit_does(bad, error, match):
    x, y = class_data()
    model = classifier()
    y_bad = y.astype(jnp.float32).at[5].set(bad) if isinstance(bad, float) else y.at[5].set(bad)
    later = (  # a later batch of a stream is checked too (a float batch after an integer one is another mistake)
        []
        if isinstance(bad, float)
        else [
            (
                lambda: jaxrnn.evaluate(
                    model, jaxrnn.HostBatches([(x[16:32], y[16:32]), (x[:16], y_bad[:16])]), loss="cross_entropy"
                ),
                "data: batch 1:",
            )
        ]
    )
    for call, name in later + [
        (lambda: jaxrnn.evaluate(model, (x, y_bad), loss="cross_entropy"), "data:"),
        (lambda: jaxrnn.fit(model, jaxrnn.Batches((x, y_bad), 16), key=key(), **FIT), "data:"),
        (lambda: jaxrnn.fit(model, jaxrnn.Batches((x, y), 16), key=key(), validation=(x, y_bad), **FIT), "validation:"),
        (
            lambda: jaxrnn.evaluate(model, jaxrnn.HostBatches([(x[:16], y_bad[:16])]), loss="cross_entropy"),
            "data: batch 0:",
        ),
    ]:
        with pytest.raises(error, match=match.replace("data:", name)):
            call()


# 4 ---------------------------------------------------------------------------------------------


def test_validation_split_draws_at_random_and_stratifies_class_targets():
    """Sorted by class, as UCR/UEA files are: the held-out part holds every class in its
    share, the same call gives the same split, and the split covers every example once."""
    n, classes = 60, 3
    targets = np.repeat(np.arange(classes), n // classes)  # sorted by class
    data = jaxrnn.Data(np.arange(n, dtype=np.float32).reshape(n, 1, 1), targets, np.full(n, 1))
    train, val = datasets.validation_split(data, 0.2)
    assert np.bincount(val.targets, minlength=classes).tolist() == [4, 4, 4]
    assert sorted(np.concatenate([train.inputs, val.inputs]).ravel().tolist()) == list(range(n))
    np.testing.assert_array_equal(val.inputs[:, 0, 0].astype(int), np.flatnonzero(np.isin(np.arange(n), val.inputs)))
    again = datasets.validation_split(data, 0.2)[1]
    np.testing.assert_array_equal(again.inputs, val.inputs)
    other = datasets.validation_split(data, 0.2, seed=1)[1]
    assert not np.array_equal(other.inputs, val.inputs)
    assert not np.array_equal(val.inputs[:, 0, 0], np.arange(n - 12, n))  # not the last examples

    uneven = np.array([0] * 50 + [1] * 8 + [2] * 2)
    _, val = datasets.validation_split(jaxrnn.Data(np.zeros((60, 1, 1), np.float32), uneven), 0.25)
    assert len(val.targets) == 15 and np.bincount(val.targets, minlength=3).tolist() == [12, 2, 1]

    values = jaxrnn.Data(np.zeros((10, 2, 1), np.float32), np.arange(10.0))  # regression targets: not stratified
    train, val = datasets.validation_split(values, 0.3)
    assert len(val.targets) == 3 and val.targets.tolist() != [7.0, 8.0, 9.0]
    train, val = datasets.validation_split(values, 0.3, shuffle=False)  # the last examples, in order
    assert val.targets.tolist() == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="stratify=True needs class-id targets"):
        datasets.validation_split(values, 0.3, stratify=True)
    with pytest.raises(ValueError, match="shuffle=False holds out the last examples: it cannot stratify"):
        datasets.validation_split(data, 0.3, shuffle=False, stratify=True)


# 5 ---------------------------------------------------------------------------------------------


def test_a_resumed_run_reports_its_own_stop_reason(tmp_path):
    x, y = class_data()
    path = str(tmp_path / "run.ckpt")
    args = dict(key=key(), epochs=2, **FIT)
    _, h = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path), MaxSteps(4)], **args)
    assert h.stop_reason == "max_steps" and h.stopped == "stopped at step 4: max_steps reached"
    _, h = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path, resume=True)], **args)
    assert h.steps == 6 and h.stopped is None and h.stop_reason is None


def test_a_run_resumed_at_its_step_limit_runs_no_update(tmp_path):
    x, y = class_data()
    path = str(tmp_path / "run.ckpt")
    args = dict(key=key(), epochs=2, **FIT)
    part, _ = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path), MaxSteps(4)], **args
    )
    again, h = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path, resume=True), MaxSteps(4)], **args
    )
    assert h.steps == 4 and h.stopped == "stopped at step 4: max_steps reached" and same(part, again)


# 6 ---------------------------------------------------------------------------------------------


def test_a_run_whose_updates_were_all_or_mostly_skipped_warns_and_says_so():
    x, y = class_data(n=32)
    poisoned = x.at[:, 2, 0].set(jnp.nan)  # every batch
    with pytest.warns(RuntimeWarning, match=r"4 of 4 updates were skipped as non-finite.*the model is untrained"):
        model, h = jaxrnn.fit(classifier(), jaxrnn.Batches((poisoned, y), 16), key=key(), epochs=2, **FIT)
    assert h.skipped == 4 and same(model, classifier())
    assert len(h.warnings) == 1 and "4 of 4 updates were skipped" in h.warnings[0]

    half = x.at[:20, 2, 0].set(jnp.nan)  # 3 batches of 16 in 4 epochs (shuffled): most updates skipped
    with pytest.warns(RuntimeWarning, match=r"updates were skipped as non-finite"):
        _, h = jaxrnn.fit(
            classifier(), jaxrnn.Batches((half, y), 16), key=key(), epochs=2, callbacks=[StopOnNonFinite(100)], **FIT
        )
    assert h.skipped > h.steps / 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = x.at[3, 2, 0].set(jnp.nan)
        _, h = jaxrnn.fit(classifier(), jaxrnn.Batches((one, y), 16, shuffle=False), key=key(), epochs=2, **FIT)
    assert h.skipped == 2 and h.warnings == []


def test_a_nan_in_an_example_skips_only_its_own_batch():
    """The last batch is padded with weight-0 slots that read an example: a NaN in that
    example must not reach the gradient through them (found by the fuzz of fit's contract)."""
    x, y = class_data(n=5)
    x = x.at[0, 2, 0].set(jnp.nan)  # in the first batch, and what the padding slot of the second reads
    _, h = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 3, shuffle=False), key=key(), epochs=1, **FIT)
    assert h.finite == [False, True]


def test_a_skipped_tbptt_window_carries_no_other_sequences_state():
    """Sequence B has a NaN at its first step, so its first window's update is skipped; its
    second window must start from a restart (zero state), not from the state another
    sequence, trained in the batch before, left behind (a learning rate of 0 keeps the
    parameters fixed, so B's second loss depends on its carried state alone)."""
    k1, k2 = jax.random.split(key(8))
    model = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=k1), jaxrnn.Head(H, 1, key=k2))
    x = jax.random.normal(key(9), (2, 8, F))
    x = x.at[1, 0, 0].set(jnp.nan)
    y = jnp.ones((2, 8, 1))
    losses = []
    for first in (x[0], -3 * x[0]):  # two different sequences before B
        data = (jnp.stack([first, x[1]]), y)
        _, h = jaxrnn.fit(
            model, jaxrnn.TBPTT(jaxrnn.Batches(data, 1, shuffle=False), 4), key=key(), optimizer=optax.sgd(0.0),
            verbose=False,
        )  # fmt: skip
        assert h.finite == [True, True, False, True]
        losses.append(h.loss[3])
    assert losses[0] == losses[1]
    ys, _ = model.run(x[1:, 4:], model.init_state(1))
    np.testing.assert_allclose(losses[0], float(jnp.mean((ys - 1) ** 2)), rtol=1e-6)


# 7 ---------------------------------------------------------------------------------------------

TS = """@problemName Equal
@univariate true
@equalLength true
@classLabel true a b
@data
{rows}
"""


def test_equal_length_data_with_lengths_leave_no_lengths_warning(tmp_path):
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.3f}" for v in rng.normal(size=6)) + f":{'ab'[i % 2]}" for i in range(16)]
    path = tmp_path / "equal.ts"
    path.write_text(TS.format(rows="\n".join(rows)))
    data = datasets.read_ts(path).data
    assert data.lengths is not None and set(np.asarray(data.lengths).tolist()) == {6}
    k1, k2 = jax.random.split(key())
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 1, H, key=k1), jaxrnn.Head(H, 2, key=k2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, _ = jaxrnn.fit(model, data, key=key(), epochs=1, **FIT)
        jaxrnn.predict(model, data.inputs)
        jaxrnn.evaluate(model, (data.inputs, data.targets), loss="cross_entropy")
    assert not model.expects_lengths


def test_the_lengths_warning_advises_the_call_it_comes_from():
    x, y = class_data()
    lengths = jnp.where(jnp.arange(len(x)) % 2 == 0, 6, 4)
    model, _ = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y, lengths), 16), key=key(), epochs=1, **FIT)
    assert model.expects_lengths
    with pytest.warns(jaxrnn.MissingLengthsWarning, match=r"pass predict\(\.\.\., lengths=lengths\)"):
        jaxrnn.predict(model, x)
    with pytest.warns(jaxrnn.MissingLengthsWarning, match=r"pass \(inputs, targets, lengths\)"):
        jaxrnn.evaluate(model, (x, y), loss="cross_entropy")


# 8 ---------------------------------------------------------------------------------------------


def test_fits_default_loss_on_a_classifier_hints_at_cross_entropy():
    x, y = class_data()
    with pytest.raises(ValueError, match=r"data: mse: targets must have the logits' shape .*loss='cross_entropy'"):
        jaxrnn.fit(classifier(), (x, y), key=key(), verbose=False)


# the smaller things ----------------------------------------------------------------------------


def test_a_resumed_epoch_counts_its_time_before_the_interruption(tmp_path, monkeypatch):
    """fit's clock advances 0.5 s at every reading: the resumed epoch reports the time of
    its updates before the interruption and after, as the uninterrupted run does."""
    fit_module = importlib.import_module("jaxrnn.train.fitting")

    clock = {"t": 0.0}

    def fake_perf_counter():
        clock["t"] += 0.5  # every reading advances the clock a little
        return clock["t"]

    x, y = class_data()
    path = str(tmp_path / "run.ckpt")
    args = dict(key=key(), epochs=1, steps_per_execution=1, **FIT)
    monkeypatch.setattr(fit_module, "time", types.SimpleNamespace(perf_counter=fake_perf_counter))
    _, whole = jaxrnn.fit(classifier(), jaxrnn.Batches((x, y), 16), **args)
    _, part = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path, every=1), MaxSteps(2)], **args
    )
    assert part.epoch_seconds == []
    _, resumed = jaxrnn.fit(
        classifier(), jaxrnn.Batches((x, y), 16), callbacks=[ModelCheckpoint(path, every=1, resume=True)], **args
    )
    assert resumed.epoch_seconds == whole.epoch_seconds  # the same clock readings, before and after the resume
    assert resumed.setup_seconds == whole.setup_seconds == 0.5  # this run's set-up: the readings before the loop


def test_a_terminal_without_width_gets_lines_not_a_bar(monkeypatch, capsys):
    from jaxrnn.callbacks import EpochPrinter

    fit_module = importlib.import_module("jaxrnn.train.fitting")

    monkeypatch.setattr(fit_module.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(fit_module, "_columns", lambda: 0)
    assert isinstance(fit_module._display(), EpochPrinter)
    monkeypatch.setattr(fit_module, "_columns", lambda: 80)
    assert not isinstance(fit_module._display(), EpochPrinter)


# every entry point that takes data: one check, one message -----------------------------------

MISTAKES = {  # what is wrong -> (inputs, targets, lengths) made wrong that way, the message after "<name>: "
    "integer inputs": (
        lambda x, y: (x.astype(jnp.int32), y, None),
        TypeError,
        "inputs must be floating point (one-hot encode ids), got dtype int32",
    ),
    "no example axis": (
        lambda x, y: (x[:, 0, 0], y, None),
        ValueError,
        "inputs must have a leading example axis and features, got shape (6,)",
    ),
    "features the model does not take": (
        lambda x, y: (x[:, :, :2], y, None),
        ValueError,
        "xs has 2 features in its last axis, expected 3; shape (6, 5, 2)",
    ),
    "lengths past T": (
        lambda x, y: (x, y, jnp.array([5, 5, 5, 5, 5, 9])),
        ValueError,
        r"lengths must lie in [0, 5] (the sequence length T), got min 5, max 9",
    ),
    "a length per sequence": (
        lambda x, y: (x, y, jnp.array([5, 5])),
        ValueError,
        "lengths must have shape (6,) (one length per sequence in the batch), got (2,)",
    ),
    "lengths that are not integers": (
        lambda x, y: (x, y, jnp.full(6, 5.0)),
        TypeError,
        "lengths must be an integer array of shape (6,), got float32",
    ),
}

ENTRY_POINTS = {  # name -> (call with (inputs, targets, lengths), the name its errors start with)
    "fit": (lambda m, d: jaxrnn.fit(m, d, key=key(), verbose=False), "data: "),
    "fit validation": (lambda m, d: jaxrnn.fit(m, GOOD, validation=d, key=key(), verbose=False), "validation: "),
    "evaluate": (lambda m, d: jaxrnn.evaluate(m, d), "data: "),
    "HostBatches": (lambda m, d: jaxrnn.fit(m, jaxrnn.HostBatches([d]), key=key(), verbose=False), "data: batch 0: "),
    "TBPTT": (lambda m, d: jaxrnn.fit(m, jaxrnn.TBPTT(d, 2), key=key(), verbose=False), "data: "),
    "predict": (lambda m, d: jaxrnn.predict(m, d[0], lengths=d[2] if len(d) == 3 else None), "inputs: "),
}
_x = jax.random.normal(key(4), (6, 5, F))
GOOD = (_x, 0.5 * _x[:, :, :2])


@pytest.mark.parametrize("mistake", list(MISTAKES))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_the_same_mistake_gets_the_same_message_at_every_entry_point(mistake, entry):
    make, error, message = MISTAKES[mistake]
    call, name = ENTRY_POINTS[entry]
    x, y, n = make(*GOOD)
    if entry == "predict" and "lengths" in message:
        name = ""  # predict takes lengths as their own argument, named by its own name
    k1, k2 = jax.random.split(key())
    model = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.GRUCell, F, 4, key=k1), jaxrnn.Head(4, 2, key=k2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxrnn.MissingLengthsWarning)
        with pytest.raises(error) as e:
            call(model, (x, y) if n is None else (x, y, n))
    assert str(e.value) == name + message


READERS = {
    "read_ts": lambda p: datasets.read_ts(p),
    "read_idx": lambda p: datasets.read_idx(p),
    "CharCorpus.read": lambda p: datasets.CharCorpus.read(p),
    "read_csv_columns": lambda p: datasets.read_csv_columns(p, ["close"]),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_file_reader_names_a_missing_file_or_a_folder_alike(reader, tmp_path):
    missing = str(tmp_path / "nowhere.dat")
    with pytest.raises(FileNotFoundError) as e:
        READERS[reader](missing)
    assert str(e.value) == f"path {missing!r} does not exist"
    with pytest.raises(IsADirectoryError) as e:
        READERS[reader](tmp_path)
    assert str(e.value) == f"path {str(tmp_path)!r} is a folder, not a file"
    with pytest.raises(TypeError, match="path must be a path .str or os.PathLike., got int"):
        READERS[reader](3)


def test_batches_and_windows_used_again_give_the_first_run_again():
    """A ``Batches`` and a ``TBPTT`` hold data and settings, no state of a run: a second
    fit with the same object (and the same key) is the first fit again, as is a fit with
    a new object of the same arrays and settings."""
    x, y = class_data(n=32)
    data = jaxrnn.Batches((x, y), 8)
    runs = [jaxrnn.fit(classifier(), d, key=key(), epochs=2, **FIT) for d in (data, data, jaxrnn.Batches((x, y), 8))]
    (m1, h1), (m2, h2), (m3, h3) = runs
    assert h1.loss == h2.loss == h3.loss and same(m1, m2) and same(m1, m3)
    xs, ys = jax.random.normal(key(), (6, 8, 3)), jax.random.normal(key(), (6, 8, 1))
    windows = jaxrnn.TBPTT(jaxrnn.Batches((xs, ys), 3), 4)
    tagger = lambda: jaxrnn.ManyToMany(  # noqa: E731
        jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 8, key=key(1)), jaxrnn.Head(8, 1, key=key(2))
    )
    (t1, g1), (t2, g2) = (jaxrnn.fit(tagger(), windows, key=key(), epochs=2, verbose=False) for _ in range(2))
    assert g1.loss == g2.loss and same(t1, t2)


def test_a_host_batches_source_used_again_trains_again_or_says_why_not():
    """A re-iterable source gives a second fit the first fit's run; a one-shot generator,
    read by the first call, is refused by the next (it used to train on nothing and report
    a NaN loss)."""
    x, y = class_data(n=32)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    again = jaxrnn.HostBatches(batches)
    first, h1 = jaxrnn.fit(classifier(), again, key=key(), epochs=2, **FIT)
    second, h2 = jaxrnn.fit(classifier(), again, key=key(), epochs=2, **FIT)
    assert h1.loss == h2.loss and same(first, second)
    once = jaxrnn.HostBatches(b for b in batches)
    model, h = jaxrnn.fit(classifier(), once, key=key(), **FIT)
    assert h.steps == 2
    spent = "data: this HostBatches wraps a one-shot iterator .a generator. that an earlier fit, evaluate or predict"
    with pytest.raises(ValueError, match=spent):
        jaxrnn.fit(classifier(), once, key=key(), **FIT)
    with pytest.raises(ValueError, match=spent):
        jaxrnn.evaluate(model, once, loss="cross_entropy")
    with pytest.raises(ValueError, match=spent.replace("data:", "inputs:")):
        jaxrnn.predict(model, once)
