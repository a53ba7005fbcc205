"""Heads and the architectures of notes 003, section 3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key

import jaxrnn

B, T, IN, H, OUT = 3, 6, 4, 8, 5


def test_head_is_the_seed_output_equation():
    head = jaxrnn.Head(H, OUT, key=key(), activation="softmax")
    h = jax.random.normal(key(1), (B, H))
    logits = head(h)
    np.testing.assert_allclose(logits, h @ head.W_hy.T + head.b_y, rtol=1e-6)
    y = head.activate(logits)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)
    huge = head.activate(jnp.array([[1e4, 0.0, -1e4, 0.0, 0.0]]))
    assert np.isfinite(np.asarray(huge)).all() and float(huge[0, 0]) == 1.0
    assert jnp.allclose(jaxrnn.Head(H, 1, key=key(), activation="sigmoid").activate(jnp.zeros(1)), 0.5)


@pytest.mark.parametrize("cell", [jaxrnn.LSTMCell, jaxrnn.GRUCell])
def test_many_to_one_reads_each_sequence_at_its_last_valid_step(cell):
    rnn = jaxrnn.make_rnn(cell, IN, H, key=key(), num_layers=2)
    model = jaxrnn.ManyToOne(rnn, jaxrnn.Head(H, OUT, key=key(1)))
    xs, lengths = jax.random.normal(key(2), (B, T, IN)), jnp.array([6, 2, 4])
    out = model(xs, lengths=lengths)
    ys, _ = rnn(xs, lengths=lengths)
    expected = model.head(ys[jnp.arange(B), lengths - 1])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_many_to_one_bidirectional_uses_both_final_states():
    rnn = jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key(), bidirectional=True)
    model = jaxrnn.ManyToOne(rnn, jaxrnn.Head(2 * H, OUT, key=key(1)))
    xs = jax.random.normal(key(2), (B, T, IN))
    ys, _ = rnn(xs)
    expected = model.head(jnp.concatenate([ys[:, -1, :H], ys[:, 0, H:]], -1))
    np.testing.assert_allclose(model(xs), expected, rtol=1e-5, atol=1e-6)


def test_many_to_many_one_output_per_step():
    rnn = jaxrnn.make_rnn(jaxrnn.SimpleRNNCell, IN, H, key=key())
    model = jaxrnn.ManyToMany(rnn, jaxrnn.Head(H, OUT, key=key(1)))
    xs = jax.random.normal(key(2), (B, T, IN))
    out = model(xs)
    assert out.shape == (B, T, OUT)
    np.testing.assert_allclose(out, model.head(rnn(xs)[0]), rtol=1e-6)


def token_decoder(cell_type, context=0, k=0):
    return jaxrnn.Decoder(
        cell_type(OUT + context, H, key=key(k)),
        jaxrnn.Head(H, OUT, key=key(k + 1)),
        vocab_size=OUT,
        start_token=0,
        context_size=context,
    )


@pytest.mark.parametrize("cell", [jaxrnn.LSTMCell, jaxrnn.GRUCell, jaxrnn.SimpleRNNCell])
def test_encoder_decoder_greedy_equals_teacher_forcing_on_its_own_tokens(cell):
    model = jaxrnn.EncoderDecoder(jaxrnn.make_rnn(cell, IN, H, key=key(7)), token_decoder(cell))
    xs, lengths = jax.random.normal(key(2), (B, T, IN)), jnp.array([6, 3, 1])
    tokens, logits = model.generate(xs, 4, lengths=lengths)
    assert tokens.shape == (B, 4) and logits.shape == (B, 4, OUT)
    np.testing.assert_allclose(model(xs, tokens, lengths=lengths), logits, rtol=1e-5, atol=1e-6)
    # the context is the encoder state at each sequence's own end: padding changes nothing
    padded = xs.at[1, 3:].set(100.0)
    np.testing.assert_allclose(model.generate(padded, 4, lengths=lengths)[1], logits, rtol=1e-5, atol=1e-6)


def test_decoder_end_token_and_sampling():
    model = jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key(7)), token_decoder(jaxrnn.GRUCell))
    xs = jax.random.normal(key(2), (B, T, IN))
    tokens, _ = model.generate(xs, 8)
    end = int(tokens[0, 1])
    stopped, _ = model.generate(xs, 8, end_token=end)
    for row in np.asarray(stopped):
        hits = np.flatnonzero(row == end)
        if hits.size:
            assert (row[hits[0] :] == end).all()
    s1, _ = model.generate(xs, 8, temperature=1.0, key=key(3))
    s2, _ = model.generate(xs, 8, temperature=1.0, key=key(3))
    np.testing.assert_array_equal(s1, s2)
    with pytest.raises(ValueError, match="key is required"):
        model.generate(xs, 3, temperature=1.0)


@pytest.mark.parametrize("condition", ["state", "input"])
@pytest.mark.parametrize("cell", [jaxrnn.LSTMCell, jaxrnn.GRUCell])
def test_one_to_many_feeds_back_its_own_outputs(condition, cell):
    U, D = 3, 2
    ctx = U if condition == "input" else 0
    dec = jaxrnn.Decoder(cell(D + ctx, H, key=key(0)), jaxrnn.Head(H, D, key=key(1)), context_size=ctx)
    model = jaxrnn.OneToMany(dec, U, condition=condition, key=key(4))
    u = jax.random.normal(key(5), (B, U))
    values, logits = model.generate(u, 7)
    assert values.shape == (B, 7, D)
    # teacher forcing on the generated values reproduces the same logits
    np.testing.assert_allclose(model(u, values), logits, rtol=1e-5, atol=1e-6)
    # the input matters
    assert not np.allclose(model.generate(u + 1.0, 7)[0], values)


def test_architecture_construction_errors():
    with pytest.raises(ValueError, match="cell.input_size must be"):
        jaxrnn.Decoder(jaxrnn.GRUCell(3, H, key=key()), jaxrnn.Head(H, OUT, key=key()), vocab_size=OUT)
    with pytest.raises(ValueError, match="encoder's last layer"):
        jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.LSTMCell, IN, H, key=key()), token_decoder(jaxrnn.GRUCell))
    with pytest.raises(ValueError, match="condition must be"):
        jaxrnn.OneToMany(token_decoder(jaxrnn.GRUCell), 3, condition="both", key=key())
