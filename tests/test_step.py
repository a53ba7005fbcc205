"""One step at a time (``model.step``): the sequence call, step after step; resets restart a
sequence exactly as running its segment alone from the zero state does."""

import zlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_KINDS, key

import jaxrnn

B, T, F, H, OUT = 3, 7, 4, 5, 2


def model_of(kind, cell, num_layers):
    cell_type, kwargs = CELL_KINDS[cell]
    seed = zlib.crc32(f"{kind.__name__} {cell} {num_layers}".encode())  # the same in any process (hash() is not)
    k1, k2 = jax.random.split(key(seed))
    return kind(jaxrnn.make_rnn(cell_type, F, H, key=k1, num_layers=num_layers, **kwargs), jaxrnn.Head(H, OUT, key=k2))


# float32: the step multiplies one input at a time, the layer's paths project all steps in
# one GEMM; rounding differs by a few 1e-6 (layer norm amplifies it), hence atol 1e-5


def stepped(model, xs, resets=None):
    """The logits of every step (B, T, out) and the final state, by ``model.step`` compiled."""
    step = eqx.filter_jit(model.step)
    state, out = model.init_state(xs.shape[0]), []
    for t in range(xs.shape[1]):
        logits, state = step(state, xs[:, t], reset=None if resets is None else resets[:, t])
        out.append(logits)
    return jnp.stack(out, axis=1), state


@pytest.mark.parametrize("cell", list(CELL_KINDS))
@pytest.mark.parametrize("num_layers", [1, 2])
def test_stepping_a_many_to_many_is_its_sequence_call(cell, num_layers):
    model = model_of(jaxrnn.ManyToMany, cell, num_layers)
    xs = jax.random.normal(key(1), (B, T, F))
    logits, state = stepped(model, xs)
    want_logits, want_state = model.run(xs)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), state, want_state)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru_ln"])
def test_stepping_a_many_to_one_gives_its_output_for_the_sequence_so_far(cell):
    model = model_of(jaxrnn.ManyToOne, cell, 2)
    xs = jax.random.normal(key(2), (B, T, F))
    logits, _ = stepped(model, xs)
    for t in (0, 3, T - 1):
        np.testing.assert_allclose(logits[:, t], model(xs[:, : t + 1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "gru_before_ln"])
def test_a_reset_restarts_a_sequence_as_its_segment_run_alone(cell):
    """Random resets: every segment of every row, stepped with resets, equals the sequence
    call on that segment alone, from the zero state."""
    model = model_of(jaxrnn.ManyToMany, cell, 2)
    xs = jax.random.normal(key(3), (B, T, F))
    resets = np.random.default_rng(0).random((B, T)) < 0.3
    resets[0, [2, 3]] = True  # a segment of one step
    logits, _ = stepped(model, xs, jnp.asarray(resets))
    for b in range(B):
        starts = [0, *[t for t in range(1, T) if resets[b, t]], T]
        for s, e in zip(starts[:-1], starts[1:]):
            want, _ = model.run(xs[b : b + 1, s:e])
            np.testing.assert_allclose(logits[b, s:e], want[0], rtol=1e-5, atol=1e-5)


def test_what_cannot_step_says_why():
    k = key(4)
    bi = jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=k, bidirectional=True), jaxrnn.Head(2 * H, 1, key=k)
    )
    with pytest.raises(ValueError, match=r"layers\[0\] is bidirectional: its backward direction needs the whole"):
        bi.step(bi.init_state(B), jnp.zeros((B, F)))
    backward = jaxrnn.Recurrent(jaxrnn.GRUCell(F, H, key=k), reverse=True)
    with pytest.raises(ValueError, match="a reverse layer cannot act step by step"):
        backward.step(backward.init_state(B), jnp.zeros((B, F)))
    model = model_of(jaxrnn.ManyToOne, "lstm", 1)
    state = model.init_state(B)
    with pytest.raises(ValueError, match=r"x must be one step of inputs \(B, 4\), got shape \(3, 1, 4\)"):
        model.step(state, jnp.zeros((B, 1, F)))
    with pytest.raises(ValueError, match=r"reset must be a bool array of shape \(3,\), got int32 \(3,\)"):
        model.step(state, jnp.zeros((B, F)), reset=jnp.zeros(B, jnp.int32))
    with pytest.raises(ValueError, match="state must be a tuple of 1 per-layer states"):
        model.step(state[0], jnp.zeros((B, F)))


def test_a_layer_restarts_from_the_initial_state_it_is_given():
    layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(F, H, key=key(5)))
    xs = jax.random.normal(key(6), (B, T, F))
    initial = jax.tree.map(lambda a: a + 0.5, layer.init_state(B))
    state = layer.init_state(B)
    for t in range(T):
        y, state = layer.step(state, xs[:, t], reset=jnp.full(B, t == 3), initial=initial)
    want, want_state = layer(xs[:, 3:], initial)
    np.testing.assert_allclose(y, want[:, -1], rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), state, want_state)
