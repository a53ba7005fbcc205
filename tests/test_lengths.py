"""Lengths that are hard to forget: a model trained with lengths records it (in the saved
file too), and training, validation, evaluate and predict warn when lengths are missing,
or when sequences end in all-zero steps as padded ones do and no lengths are given."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.train.lengths import padded_share

N, T, F, H = 16, 6, 2, 8


def padded():
    """Sequences of lengths 2..6, zero after each one's end; class: the sign of the sum."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, T + 1, N)
    x = rng.standard_normal((N, T, F)).astype(np.float32)
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0
    y = (x.sum((1, 2)) > 0).astype(np.int32)
    return x, y, lengths.astype(np.int32)


def model():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=k1), jaxrnn.Head(H, 2, key=k2))


def train(data, **kw):
    args = dict(key=jax.random.PRNGKey(1), loss="cross_entropy", verbose=False)
    return jaxrnn.fit(model(), jaxrnn.Batches(data, 8), **{**args, **kw})[0]


def no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", jaxrnn.MissingLengthsWarning)
        return call()


def test_a_model_trained_with_lengths_says_so_and_warns_where_they_are_missing(tmp_path):
    x, y, lengths = padded()
    trained = no_warning(lambda: train((x, y, lengths)))
    assert trained.expects_lengths and not model().expects_lengths
    no_warning(lambda: jaxrnn.evaluate(trained, (x, y, lengths), loss="cross_entropy"))
    no_warning(lambda: jaxrnn.predict(trained, x, lengths=lengths))
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="data has no lengths but the model was trained with lengths"):
        jaxrnn.evaluate(trained, (x, y), loss="cross_entropy")
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="inputs has no lengths but the model was trained with"):
        jaxrnn.predict(trained, x)
    jaxrnn.save(str(tmp_path / "m.npz"), trained)
    loaded = jaxrnn.load(str(tmp_path / "m.npz"))
    assert loaded.expects_lengths
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="the model was trained with lengths"):
        jaxrnn.predict(loaded, x)
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="data has no lengths but the model was trained with"):
        jaxrnn.fit(trained, (x, y), key=jax.random.PRNGKey(2), loss="cross_entropy", verbose=False)


def test_validation_without_lengths_warns_when_the_training_data_have_them():
    x, y, lengths = padded()
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="validation has no lengths but the training data have"):
        train((x, y, lengths), validation=(x[:8], y[:8]))


def test_padded_looking_data_without_lengths_warn_in_training_evaluation_and_prediction():
    x, y, _ = padded()
    share, zeros, leading = padded_share(x)
    assert share == pytest.approx(np.mean(np.abs(x[:, -1]).sum(-1) == 0)) and share > 0.5 and zeros > 0
    assert leading == 0
    with pytest.warns(jaxrnn.MissingLengthsWarning, match=r"data: \d+% of the sequences end in steps that are all"):
        trained = train((x, y))
    assert not trained.expects_lengths
    with pytest.warns(jaxrnn.MissingLengthsWarning, match="end in steps that are all zeros"):
        jaxrnn.evaluate(trained, (x, y), loss="cross_entropy")
    with pytest.warns(jaxrnn.MissingLengthsWarning, match=r"inputs: \d+% of the sequences end"):
        jaxrnn.predict(trained, x)
    dense = jnp.ones_like(x)  # no step is all zeros: nothing to say
    no_warning(lambda: jaxrnn.predict(trained, dense))
    margins = np.pad(x[:, :3], ((0, 0), (1, 2), (0, 0)))  # zeros at both ends, as MNIST's rows: data
    no_warning(lambda: jaxrnn.predict(trained, margins))
    assert padded_share(np.zeros((3, 4, 2))) == (1.0, 12, 1.0)
