"""Unrolling: scan == Python loop, reverse == flipped input, lengths == each sequence alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key

import jaxrnn

B, T, IN, H = 3, 7, 4, 5
CELLS = {
    "rnn": lambda k: jaxrnn.SimpleRNNCell(IN, H, key=k),
    "lstm": lambda k: jaxrnn.LSTMCell(IN, H, key=k),
    "gru": lambda k: jaxrnn.GRUCell(IN, H, key=k),
    "gru_before": lambda k: jaxrnn.ResetBeforeGRUCell(IN, H, key=k),
    "ln_lstm": lambda k: jaxrnn.LSTMCell(IN, H, key=k, layer_norm=True),
    "ln_gru": lambda k: jaxrnn.GRUCell(IN, H, key=k, layer_norm=True),
}


def xs_(T=T, seed=1):
    return jax.random.normal(key(seed), (B, T, IN))


def python_loop(cell, xs, state):
    outs = []
    for t in range(xs.shape[1]):
        state = cell(state, xs[:, t])
        outs.append(cell.output(state))
    return jnp.stack(outs, 1), state


def assert_tree_close(a, b, **kw):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, **kw), a, b)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("unroll", [1, 3])
def test_scan_equals_python_loop(name, unroll):
    cell = CELLS[name](key())
    xs = xs_()
    state0 = jax.tree.map(lambda z: z + 0.1, cell.init_state((B,)))
    ys, s = jaxrnn.Recurrent(cell, unroll=unroll)(xs, state0)
    ys_ref, s_ref = python_loop(cell, xs, state0)
    assert_tree_close((ys, s), (ys_ref, s_ref), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CELLS)
def test_reverse_equals_flipped(name):
    cell = CELLS[name](key())
    xs = xs_()
    ys, s = jaxrnn.Recurrent(cell, reverse=True)(xs)
    ys_f, s_f = jaxrnn.Recurrent(cell)(xs[:, ::-1])
    assert_tree_close((ys, s), (ys_f[:, ::-1], s_f), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_equal_each_sequence_alone(name, reverse):
    cell = CELLS[name](key())
    xs = xs_()
    lengths = jnp.array([7, 3, 0])
    layer = jaxrnn.Recurrent(cell, reverse=reverse)
    ys, s = layer(xs, lengths=lengths)
    for b, L in enumerate(lengths.tolist()):
        ys_b, s_b = layer(xs[b : b + 1, :L])
        np.testing.assert_allclose(ys[b, :L], ys_b[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ys[b, L:], 0.0)
        assert_tree_close(jax.tree.map(lambda a, b=b: a[b], s), jax.tree.map(lambda a: a[0], s_b), rtol=1e-5, atol=1e-6)


def test_empty_sequence_returns_initial_state():
    cell = CELLS["lstm"](key())
    state0 = jax.tree.map(lambda z: z + 0.5, cell.init_state((B,)))
    ys, s = jax.jit(jaxrnn.Recurrent(cell).__call__)(jnp.zeros((B, 0, IN)), state0)
    assert ys.shape == (B, 0, H)
    assert_tree_close(s, state0)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional(merge):
    k1, k2 = jax.random.split(key())
    fwd, bwd = jaxrnn.Recurrent(CELLS["gru"](k1)), jaxrnn.Recurrent(CELLS["gru"](k2), reverse=True)
    bi = jaxrnn.Bidirectional(fwd, bwd, merge)
    xs, lengths = xs_(), jnp.array([7, 4, 2])
    ys, (s_f, s_b) = bi(xs, lengths=lengths)
    y_f, _ = fwd(xs, lengths=lengths)
    y_b, _ = bwd(xs, lengths=lengths)
    expected = jnp.concatenate([y_f, y_b], -1) if merge == "concat" else y_f + y_b
    np.testing.assert_allclose(ys, expected, rtol=1e-6)
    assert bi.output_size == (2 * H if merge == "concat" else H)
    # the backward direction's final state has read the whole valid sequence: it is its output at t = 0
    np.testing.assert_allclose(s_b, y_b[:, 0], rtol=1e-6)


def test_stack_feeds_layers_in_turn_and_dropout_uses_key():
    rnn = jaxrnn.make_rnn(jaxrnn.LSTMCell, IN, H, key=key(), num_layers=2, dropout=0.5)
    xs = xs_()
    ys, states = rnn(xs, inference=True)
    y0, s0 = rnn.layers[0](xs)
    y1, s1 = rnn.layers[1](y0)
    assert_tree_close((ys, states), (y1, (s0, s1)), rtol=1e-6)
    a, _ = rnn(xs, key=key(5))
    b, _ = rnn(xs, key=key(5))
    c, _ = rnn(xs, key=key(6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, ys)
    with pytest.raises(ValueError, match="key"):
        rnn(xs)


def test_make_rnn_bidirectional_stack_shapes():
    rnn = jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key(), num_layers=3, bidirectional=True, layer_norm=True)
    ys, states = jax.jit(lambda m, x: m(x))(rnn, xs_())
    assert ys.shape == (B, T, 2 * H) and len(states) == 3
    assert rnn.layers[1].input_size == 2 * H and rnn.layers[1].forward.cell.layer_norm


def test_step_touches_no_python_state():
    """A jitted forward and grad give the eager results, and re-running hits the cache."""
    cell = CELLS["lstm"](key())
    layer = jaxrnn.Recurrent(cell)
    xs = xs_()
    f = jax.jit(lambda m, x: jnp.sum(m(x)[0]))
    g = jax.jit(jax.grad(lambda m, x: jnp.sum(m(x)[0])))
    np.testing.assert_allclose(f(layer, xs), jnp.sum(layer(xs)[0]), rtol=1e-5)
    g(layer, xs)
    g(layer, xs + 1.0)
    assert g._cache_size() == 1
    jaxpr = jax.make_jaxpr(cell.step)(cell.init_state((B,)), jnp.zeros((B, 4 * H)))
    assert not any("callback" in str(e.primitive) for e in jaxpr.jaxpr.eqns)
