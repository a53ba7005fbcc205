"""Each cell's step against the seed equations written by hand in numpy (tests/reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from conftest import key, set_weights

import jaxrnn

GRU_FORMS = {True: jaxrnn.GRUCell, False: jaxrnn.ResetBeforeGRUCell}  # keyed by reset-after

IN, H = 3, 4


def gates(rng, names, scale=0.5):
    W = {g: scale * rng.standard_normal((H, H + IN)).astype(np.float32) for g in names}
    b = {g: scale * rng.standard_normal(H).astype(np.float32) for g in names}
    return W, b


def run_steps(cell, xs, state):
    out = []
    for x in xs:
        state = cell(state, jnp.asarray(x))
        out.append(state)
    return out


@pytest.mark.parametrize("activation,f", [("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0))])
def test_simple_rnn_matches_seed_equation(rng, activation, f):
    W_xh = rng.standard_normal((H, IN)).astype(np.float32)
    W_hh = rng.standard_normal((H, H)).astype(np.float32) * 0.5
    b_h = rng.standard_normal(H).astype(np.float32)
    cell = jaxrnn.SimpleRNNCell(IN, H, key=key(), activation=activation)
    # the notes' single b_h split as b_xh + b_hh
    cell = set_weights(cell, W_xh=W_xh, W_hh=W_hh, b_xh=b_h - 0.25, b_hh=np.full(H, 0.25, np.float32))
    xs = rng.standard_normal((6, IN)).astype(np.float32)
    h_ref = np.zeros(H, np.float32)
    for x, h in zip(xs, run_steps(cell, xs, cell.init_state())):
        h_ref = ref.rnn_step(h_ref, x, W_xh, W_hh, b_h, f)
        np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)


def test_simple_rnn_any_callable():
    cell = jaxrnn.SimpleRNNCell(IN, H, key=key(), activation=jnp.sin)
    h, x = jnp.ones(H) * 0.3, jnp.ones(IN)
    expected = jnp.sin(cell.W_xh @ x + cell.b_xh + cell.W_hh @ h + cell.b_hh)
    np.testing.assert_allclose(cell(h, x), expected, rtol=1e-6)


def to_jaxrnn(W, b, order):
    """Seed concat-form gate matrices -> jaxrnn's stacked (W_xh, W_hh, b) in ``order``."""
    W_hh = np.concatenate([ref.split(W[g], H)[0] for g in order])
    W_xh = np.concatenate([ref.split(W[g], H)[1] for g in order])
    return W_xh, W_hh, np.concatenate([b[g] for g in order])


def test_lstm_matches_seed_equations(rng):
    W, b = gates(rng, "fiCo")
    W_xh, W_hh, b_all = to_jaxrnn(W, b, "ifCo")  # PyTorch order i, f, g(=C~), o
    cell = set_weights(jaxrnn.LSTMCell(IN, H, key=key()), W_xh=W_xh, W_hh=W_hh, b_xh=b_all, b_hh=np.zeros(4 * H))
    xs = rng.standard_normal((6, IN)).astype(np.float32)
    h_ref = c_ref = np.zeros(H, np.float32)
    for x, (h, c) in zip(xs, run_steps(cell, xs, cell.init_state())):
        h_ref, c_ref = ref.lstm_step(h_ref, c_ref, x, W, b)
        np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)


def test_lstm_forget_bias_default():
    cell = jaxrnn.LSTMCell(IN, H, key=key())
    np.testing.assert_array_equal(cell.b_xh, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])


@pytest.mark.parametrize("kind", [jaxrnn.LSTMCell, jaxrnn.GRUCell, jaxrnn.ResetBeforeGRUCell])
def test_chrono_init_gives_time_scales_up_to_t_max(kind):
    """Tallec & Ollivier (2018): each unit keeps u/(1+u) of its state per step, u ~ U(1, t_max - 1),
    so its time scale 1/(1 - keep) = 1 + u lies in [2, t_max]; the LSTM's input gate is 1 - f."""
    t_max, n = 50, 512
    cell = jaxrnn.chrono_init(kind(1, n, key=key(1)), t_max, key=key(2))
    cell = set_weights(cell, W_xh=np.zeros((kind.n_gates * n, 1)), W_hh=np.zeros((kind.n_gates * n, n)))
    one = np.ones(n, np.float32)
    if kind is jaxrnn.LSTMCell:  # from c = 1 with g = tanh(0) = 0: c_1 = f
        keep = np.asarray(cell((0 * one, one), np.zeros(1, np.float32))[1])
        i = jax.nn.sigmoid(cell.b_xh[:n] + cell.b_hh[:n])
        np.testing.assert_allclose(i, 1 - keep, rtol=1e-5, atol=1e-6)
    else:  # from h = 1 with n = tanh(0) = 0: h_1 = (1 - z) h
        keep = np.asarray(cell(one, np.zeros(1, np.float32)))
    scale = 1 / (1 - keep)
    assert 2 - 1e-3 <= scale.min() < 3 and t_max - 1 < scale.max() <= t_max + 1e-3, (scale.min(), scale.max())
    assert abs(np.median(scale) - (1 + t_max) / 2) < 3  # 1 + U(1, t_max - 1): median (1 + t_max) / 2
    with pytest.raises(TypeError, match="SimpleRNNCell"):
        jaxrnn.chrono_init(jaxrnn.SimpleRNNCell(1, 4, key=key()), t_max, key=key())
    with pytest.raises(ValueError, match="t_max must be an int >= 3"):
        jaxrnn.chrono_init(kind(1, 4, key=key()), 2, key=key())


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_matches_seed_equations(rng, reset_after):
    W, b = gates(rng, "rzh")
    W_xh, W_hh, b_all = to_jaxrnn(W, b, "rzh")
    b_hn = rng.standard_normal(H).astype(np.float32) if reset_after else np.zeros(H, np.float32)
    b_hh = np.concatenate([np.zeros(2 * H, np.float32), b_hn])
    cell = GRU_FORMS[reset_after](IN, H, key=key())
    cell = set_weights(cell, W_xh=W_xh, W_hh=W_hh, b_xh=b_all, b_hh=b_hh)
    xs = rng.standard_normal((6, IN)).astype(np.float32)
    h_ref = np.zeros(H, np.float32)
    for x, h in zip(xs, run_steps(cell, xs, cell.init_state())):
        if reset_after:
            h_ref = ref.gru_step_reset_after(h_ref, x, W, b, b_hn)
        else:
            h_ref = ref.gru_step_seed(h_ref, x, W, b)
        np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)


def test_gru_forms_differ_only_through_reset():
    """With r = 1 (huge r bias) and b_hn = 0 both forms compute the same step."""
    cells = [GRU_FORMS[ra](IN, H, key=key(1)) for ra in (False, True)]
    cells = [set_weights(c, b_xh=c.b_xh.at[:H].set(50.0)) for c in cells]
    h, x = jnp.linspace(-1, 1, H), jnp.ones(IN)
    np.testing.assert_allclose(cells[0](h, x), cells[1](h, x), rtol=1e-6)


def test_layer_norm_lstm_matches_reference(rng):
    cell = jaxrnn.LSTMCell(IN, H, key=key(), layer_norm=True)
    g_x, g_h = rng.uniform(0.5, 1.5, (2, 4 * H)).astype(np.float32)
    g_c, s_c = rng.uniform(0.5, 1.5, H).astype(np.float32), rng.standard_normal(H).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32)
    cell = set_weights(cell, ln_x=g_x, ln_h=g_h, ln_c=g_c, ln_c_shift=s_c, b_xh=b, b_hh=np.zeros(4 * H))
    W_xh, W_hh = np.asarray(cell.W_xh), np.asarray(cell.W_hh)
    xs = rng.standard_normal((5, IN)).astype(np.float32)
    h_ref = c_ref = np.zeros(H, np.float32) + 0.1
    state = (jnp.asarray(h_ref), jnp.asarray(c_ref))
    for x in xs:
        state = cell(state, jnp.asarray(x))
        h_ref, c_ref = ref.ln_lstm_step(h_ref, c_ref, x, W_xh, W_hh, b, g_x, g_h, g_c, s_c)
        np.testing.assert_allclose(state[0], h_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(state[1], c_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reset_after", [False, True])
def test_layer_norm_gru_normalises_each_gate(reset_after):
    """Scaling W_hh and W_xh by 10 leaves a layer-norm GRU's step unchanged (LN is scale-free)."""
    cell = GRU_FORMS[reset_after](IN, H, key=key(2), layer_norm=True)
    big = set_weights(cell, W_hh=10 * cell.W_hh, W_xh=10 * cell.W_xh)
    h, x = jnp.linspace(-0.5, 0.5, H), jnp.ones(IN)
    np.testing.assert_allclose(cell(h, x), big(h, x), rtol=1e-4, atol=1e-5)
    assert not np.allclose(GRU_FORMS[reset_after](IN, H, key=key(2))(h, x), cell(h, x))


def test_seed_002_stock_price_example():
    """Notes 002: input 1, hidden 2, W_x = 0.5, W_h = 0.2, b = 0, h_0 = 0, prices 100..108.

    W_xh x is 50 or more, so tanh saturates: every hidden state is 1.0 in float32 and
    tanh'(z) = 1 - tanh(z)^2 is 0, so the gradient through the hidden state vanishes.
    """
    cell = jaxrnn.SimpleRNNCell(1, 2, key=key())
    cell = set_weights(cell, W_xh=np.full((2, 1), 0.5), W_hh=np.full((2, 2), 0.2), b_xh=np.zeros(2), b_hh=np.zeros(2))
    prices = np.array([100, 102, 104, 106, 108], np.float32)
    layer = jaxrnn.Recurrent(cell)
    hs, _ = layer(jnp.asarray(prices)[None, :, None])
    h_ref, expected = np.zeros(2), []
    for p in prices:
        h_ref = ref.rnn_step(h_ref, np.array([p]), np.full((2, 1), 0.5), np.full((2, 2), 0.2), np.zeros(2))
        expected.append(h_ref)
    np.testing.assert_allclose(hs[0], np.array(expected, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(hs[0], np.ones((5, 2), np.float32))
    grad = jax.grad(lambda c: jaxrnn.Recurrent(c)(jnp.asarray(prices)[None, :, None])[0][0, -1].sum())(cell)
    assert float(jnp.abs(grad.W_xh).max()) == 0.0 and float(jnp.abs(grad.W_hh).max()) == 0.0
    # scaled inputs (prices / 100) keep tanh in its linear range and the gradient alive
    scaled = layer(jnp.asarray(prices / 100)[None, :, None])[0][0]
    assert float(scaled.max()) < 0.9


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_initialisers(scale):
    k = key(3)
    Q = jaxrnn.init.orthogonal(scale)(k, (16, 16), jnp.float32)
    np.testing.assert_allclose(Q.T @ Q, scale**2 * np.eye(16), atol=1e-5)
    np.testing.assert_array_equal(jaxrnn.init.identity(scale)(k, (5, 5), jnp.float32), scale * np.eye(5))
    G = jaxrnn.init.gaussian(scale)(k, (400, 400), jnp.float32)
    assert abs(float(G.std()) * np.sqrt(400) / scale - 1) < 0.02
    cell = jaxrnn.LSTMCell(3, 8, key=k, W_hh_init=jaxrnn.init.orthogonal(scale))
    for block in np.split(np.asarray(cell.W_hh), 4):
        np.testing.assert_allclose(block.T @ block, scale**2 * np.eye(8), atol=1e-5)
    with pytest.raises(ValueError, match="square"):
        jaxrnn.init.identity()(k, (3, 4), jnp.float32)


def test_irnn():
    cell = jaxrnn.SimpleRNNCell(2, 5, key=key(), activation="relu", W_hh_init=jaxrnn.init.identity())
    np.testing.assert_array_equal(cell.W_hh, np.eye(5))
    h = jnp.arange(5.0)
    np.testing.assert_allclose(cell.step(h, jnp.zeros(5)), h)  # identity memory with zero input


CELL_CLASSES = [jaxrnn.SimpleRNNCell, jaxrnn.LSTMCell, jaxrnn.GRUCell, jaxrnn.ResetBeforeGRUCell]


def test_abstract_cells_hold_no_field_and_concrete_cells_declare_all_of_theirs():
    """Equinox's abstract/final form: fields and ``__init__`` in the final class only."""
    import dataclasses

    from jaxrnn.cells import FusedCell, SummedCell

    for abstract in (jaxrnn.Cell, FusedCell, SummedCell):
        assert dataclasses.fields(abstract) == (), abstract
    shared = {"W_xh", "W_hh", "b_xh", "b_hh", "ln_x", "ln_h", "input_size", "hidden_size"}
    for cls in CELL_CLASSES:
        assert shared <= set(cls.__annotations__) and "__init__" in cls.__dict__, cls


@pytest.mark.parametrize("cls", CELL_CLASSES)
def test_a_cell_names_a_state_of_the_wrong_shape_or_dtype(cls):
    cell = cls(IN, H, key=key())
    good = cell.init_state((2,))
    x = jnp.ones((2, IN))
    assert jax.tree.map(jnp.shape, cell(good, x)) == jax.tree.map(jnp.shape, good)
    wrong_size = jax.tree.map(lambda a: jnp.zeros((2, H + 1)), good)
    with pytest.raises(ValueError, match=r"state must have \(shape, dtype\) .*\(2, 4\).* got .*\(2, 5\)"):
        cell(wrong_size, x)
    with pytest.raises(ValueError, match="state must have"):
        cell(jax.tree.map(lambda a: a.astype(jnp.float16), good), x)
    with pytest.raises(ValueError, match="state must have"):
        cell(cell.init_state((3,)), x)  # a batch of 3 states for 2 inputs


def test_an_unknown_cell_option_is_named():
    with pytest.raises(TypeError, match=r"unknown cell option\(s\) \['layernorm'\]; a cell takes .*'layer_norm'"):
        jaxrnn.GRUCell(IN, H, key=key(), layernorm=True)
