"""Tasks: documented shapes and ranges, the published baselines from the generators, and
fit lowering each task's loss."""

import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn import tasks


def test_adding_shapes_ranges_and_baseline():
    t = tasks.adding(60, 20_000, key=key(), n_validation=1000)
    x, y = t.train.inputs, t.train.targets
    assert x.shape == (19_000, 60, 2) and y.shape == (19_000, 1)
    assert float(x[..., 0].min()) >= 0 and float(x[..., 0].max()) <= 1
    marker = np.asarray(x[..., 1])
    np.testing.assert_array_equal(marker[:, :30].sum(1), 1)  # exactly one 1 in each half
    np.testing.assert_array_equal(marker[:, 30:].sum(1), 1)
    assert set(np.unique(marker)) == {0.0, 1.0}
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(1), rtol=1e-6)
    mse_of_predicting_one = float(jnp.mean((y - 1.0) ** 2))
    assert abs(mse_of_predicting_one / (1 / 6) - 1) < 0.02 and t.baseline == pytest.approx(1 / 6)


def test_copy_shapes_and_memoryless_baseline():
    T = 30
    t = tasks.copy_memory(T, 20_000, key=key(), n_validation=1000)
    x, y = t.train.inputs, np.asarray(t.train.targets)
    assert x.shape == (19_000, T + 20, 10) and y.shape == (19_000, T + 20)
    ids = np.asarray(x.argmax(-1))
    assert ((ids[:, :10] >= 1) & (ids[:, :10] <= 8)).all() and (ids[:, 10 : T + 9] == 0).all()
    assert (ids[:, T + 9] == 9).all() and (ids[:, T + 10 :] == 0).all()
    np.testing.assert_array_equal(y[:, T + 10 :], ids[:, :10])
    assert (y[:, : T + 10] == 0).all()
    # the best predictor without memory: the empirical distribution of the target at each position
    freq = np.stack([np.bincount(y[:, p], minlength=10) / len(y) for p in range(T + 20)])
    ce = -np.mean(np.log(freq[np.arange(T + 20)[None, :], y]))
    expected = 10 * math.log(8) / (T + 20)
    assert abs(ce / expected - 1) < 0.02 and t.baseline == pytest.approx(expected)


def test_france_sentences():
    t = tasks.france(12, 300, key=key(), n_validation=50, length=20)
    vocab, x = t.info["vocab"], np.asarray(t.train.inputs)
    assert x.shape == (250, 20, len(vocab)) and t.output_size == 8
    words = [[vocab[i] for i in row] for row in x.argmax(-1)]
    for w, c in zip(words, np.asarray(t.train.targets)):
        cue = 20 - 1 - 12
        assert w[cue - 4 : cue] == ["I", "grew", "up", "in"] and w[-3:] == ["I", "speak", "fluent"]
        assert tasks.notes.COUNTRIES[w[cue]] == t.info["languages"][c]
    # distractors: other countries are mentioned after the cue, and the last one mentioned
    # says nothing of the answer (accuracy near chance, 1/8), so only memory of the cue helps
    countries = list(tasks.notes.COUNTRIES)
    later = [[x for x in row[cue + 1 : -3] if x in countries] for row in words]
    assert np.mean([len(m) > 0 for m in later]) > 0.7
    last = [countries.index(m[-1]) for m in later if m]
    hits = np.mean(np.asarray(last) == np.asarray(t.train.targets)[[bool(m) for m in later]])
    assert hits < 0.25, hits
    plain = tasks.france(12, 300, key=key(), n_validation=50, length=20, distractors=False)
    plain_words = [[vocab[i] for i in row] for row in np.asarray(plain.train.inputs).argmax(-1)]
    assert not any(x in countries for row in plain_words for x in row[cue + 1 : -3])
    with pytest.raises(ValueError, match="does not fit"):
        tasks.france(30, key=key(), length=20)
    with pytest.raises(ValueError, match="distance must be an int >= 3"):
        tasks.france(2, key=key())


def test_next_word_and_stock():
    t = tasks.next_word()
    vocab = t.info["vocab"]
    assert t.train.inputs.shape == (2, 5, len(vocab))
    last = [vocab[int(t.train.targets[b, int(t.train.lengths[b]) - 1])] for b in range(2)]
    assert last == ["models", "mat"]
    s = tasks.stock_prices(60, key=key(), noise=0.0)
    np.testing.assert_allclose(np.asarray(s.info["prices"])[:5], [100, 102, 104, 106, 108])
    assert s.train.inputs.shape[1:] == (5, 1) and abs(float(s.train.inputs.mean())) < 1.0


def test_characters_and_digits_and_reverse():
    c = tasks.characters(tasks.stdlib_text(max_chars=4000), n_streams=4)
    assert c.train.inputs.shape[0] == 4 and c.train.inputs.shape[-1] == len(c.info["vocab"])
    np.testing.assert_array_equal(c.train.targets[:, :-1], c.train.inputs.argmax(-1)[:, 1:])
    d = tasks.digits()
    assert d.train.inputs.shape[1:] == (8, 8) and float(d.train.inputs.max()) <= 1.0
    r = tasks.reverse_digits(4, 100, key=key(), n_validation=10)
    np.testing.assert_array_equal(r.train.targets, r.train.inputs.argmax(-1)[:, ::-1])


TRAIN = {
    "adding": (lambda: tasks.adding(20, 1200, key=key(), n_validation=200), 4, {}),
    "copy": (lambda: tasks.copy_memory(5, 1200, key=key(), n_validation=200), 4, {}),
    "france": (lambda: tasks.france(5, 1200, key=key(), n_validation=200), 4, {}),
    "next_word": (tasks.next_word, 60, {"batch_size": 2}),
    "stock": (lambda: tasks.stock_prices(300, key=key()), 10, {}),
    "chars": (
        lambda: tasks.characters(tasks.stdlib_text(max_chars=6000), n_streams=8),
        3,
        {"batch_size": 8, "tbptt": 50},  # trained as TBPTT(Batches(t.train, 8), 50)
    ),
    "digits": (tasks.digits, 4, {}),
    "reverse": (lambda: tasks.reverse_digits(4, 1200, key=key(), n_validation=200), 4, {}),
}


@pytest.mark.parametrize("name", list(TRAIN))
def test_fit_lowers_the_loss_on_every_task(name):
    make, epochs, kwargs = TRAIN[name]
    t = make()
    model = tasks.build_model(t, jaxrnn.GRUCell, 32, key=key(1))
    k, batches = kwargs.get("tbptt"), jaxrnn.Batches(t.train, kwargs.get("batch_size", 32))
    _, hist = jaxrnn.fit(
        model,
        batches if k is None else jaxrnn.TBPTT(batches, k),
        key=key(2),
        loss=t.loss,
        epochs=epochs,
        validation=t.validation,
        optimizer=optax.adam(1e-2),
        verbose=False,
    )
    # the first recorded loss is the untrained model's (taken before the first update)
    assert hist.epochs[-1]["val_loss"] < 0.8 * hist.loss[0], (hist.loss[0], hist.epochs)


def test_next_word_learns_the_seed_predictions_and_text_sampling():
    t = tasks.next_word()
    model = tasks.build_model(t, jaxrnn.LSTMCell, 32, key=key(1))
    model, _ = jaxrnn.fit(
        model, jaxrnn.Batches(t.train, 2), key=key(), loss=t.loss, epochs=150, optimizer=optax.adam(3e-2), verbose=False
    )
    vocab = t.info["vocab"]
    logits = model(t.train.inputs, lengths=t.train.lengths)
    assert vocab[int(logits[0, 3].argmax())] == "models" and vocab[int(logits[1, 4].argmax())] == "mat"
    c = tasks.characters(tasks.stdlib_text(max_chars=3000), n_streams=2)
    m = tasks.build_model(c, jaxrnn.GRUCell, 16, key=key())
    greedy = tasks.sample_text(m, c.info["vocab"], "def ", 20)
    assert (
        greedy.startswith("def ") and len(greedy) == 24 and greedy == tasks.sample_text(m, c.info["vocab"], "def ", 20)
    )
    hot = tasks.sample_text(m, c.info["vocab"], "def ", 20, temperature=1.0, key=key(3))
    assert hot == tasks.sample_text(m, c.info["vocab"], "def ", 20, temperature=1.0, key=key(3))
    with pytest.raises(ValueError, match="characters not in it"):
        tasks.sample_text(m, c.info["vocab"], "\u2603", 5)
