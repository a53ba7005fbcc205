"""jaxrnn.spectra against analytic results: hand-derived Jacobians, orthogonal linear
cells, log-determinants, the random-network transition, the Pascanu bound."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key, set_weights
from scipy.stats import ortho_group

import jaxrnn
from jaxrnn import spectra as sp

F, H, T = 3, 6, 12


def sig(a):
    return 1 / (1 + np.exp(-a))


def inputs(T=T, seed=1, dtype=jnp.float32):
    return jax.random.normal(key(seed), (T, F), dtype)


def analytic_rnn(cell, h, xw):
    z = xw + cell.W_hh @ h + cell.b_hh
    return np.diag(1 - np.tanh(z) ** 2) @ cell.W_hh


def analytic_lstm(cell, h, c, xw):
    W = np.split(np.asarray(cell.W_hh), 4)
    a_i, a_f, a_g, a_o = np.split(xw + W_all(cell) @ h + cell.b_hh, 4)
    i, f, g, o = sig(a_i), sig(a_f), np.tanh(a_g), sig(a_o)
    c_new = f * c + i * g
    dc_dh = np.diag(c * f * (1 - f)) @ W[1] + np.diag(g * i * (1 - i)) @ W[0] + np.diag(i * (1 - g**2)) @ W[2]
    dc_dc = np.diag(f)
    th = np.tanh(c_new)
    dh_dh = np.diag(th * o * (1 - o)) @ W[3] + np.diag(o * (1 - th**2)) @ dc_dh
    dh_dc = np.diag(o * (1 - th**2)) @ dc_dc
    return np.block([[dh_dh, dh_dc], [dc_dh, dc_dc]])


def W_all(cell):
    return np.asarray(cell.W_hh)


def analytic_gru(cell, h, xw):
    W_r, W_z, W_n = np.split(W_all(cell), 3)
    b_r, b_z, b_n = np.split(np.asarray(cell.b_hh), 3)
    x_r, x_z, x_n = np.split(xw, 3)
    r, z = sig(x_r + W_r @ h + b_r), sig(x_z + W_z @ h + b_z)
    dr, dz = np.diag(r * (1 - r)) @ W_r, np.diag(z * (1 - z)) @ W_z
    if isinstance(cell, jaxrnn.GRUCell):
        m = W_n @ h + b_n
        n = np.tanh(x_n + r * m)
        dn = np.diag(1 - n**2) @ (np.diag(m) @ dr + np.diag(r) @ W_n)
    else:
        n = np.tanh(x_n + W_n @ (r * h) + b_n)
        dn = np.diag(1 - n**2) @ W_n @ (np.diag(r) + np.diag(h) @ dr)
    return np.diag(1 - z) + np.diag(n - h) @ dz + np.diag(z) @ dn


@pytest.mark.parametrize(
    "make",
    [
        lambda k: jaxrnn.SimpleRNNCell(F, H, key=k, dtype=jnp.float64),
        lambda k: jaxrnn.LSTMCell(F, H, key=k, dtype=jnp.float64),
        lambda k: jaxrnn.GRUCell(F, H, key=k, dtype=jnp.float64),
        lambda k: jaxrnn.ResetBeforeGRUCell(F, H, key=k, dtype=jnp.float64),
    ],
    ids=["rnn", "lstm", "gru", "gru_reset_before"],
)
def test_autodiff_jacobians_equal_hand_derived(make):
    with jax.enable_x64(True):
        cell = make(key())
        cell = set_weights(cell, b_hh=0.3 * jax.random.normal(key(9), cell.b_hh.shape, jnp.float64))
        xs = inputs(dtype=jnp.float64)
        J = np.asarray(sp.step_jacobians(cell, xs))
        traj = sp.trajectory(cell, xs)
        for t in range(T):
            s, xw = np.asarray(traj.states[t]), np.asarray(traj.xw[t])
            c = jax.tree.map(np.asarray, cell)
            if isinstance(cell, jaxrnn.SimpleRNNCell):
                want = analytic_rnn(c, s, xw)
            elif isinstance(cell, jaxrnn.LSTMCell):
                want = analytic_lstm(c, s[:H], s[H:], xw)
            else:
                want = analytic_gru(c, s, xw)
            np.testing.assert_allclose(J[t], want, rtol=1e-6, atol=1e-12)


def tanh_derivative_along(cell, xs):
    """f'(z_t) = 1 - tanh(z_t)^2 at every step of the simple RNN's trajectory: (T, H)."""
    traj = sp.trajectory(cell, xs)
    z = traj.xw + traj.states[:-1] @ cell.W_hh.T + cell.b_hh
    return 1 - jnp.tanh(z) ** 2


def test_simple_rnn_jacobian_float32_and_h_block():
    cell = jaxrnn.SimpleRNNCell(F, H, key=key())
    xs = inputs()
    J = sp.step_jacobians(cell, xs)
    want = tanh_derivative_along(cell, xs)[:, :, None] * cell.W_hh[None]
    np.testing.assert_allclose(J, want, atol=1e-6)
    lstm = jaxrnn.LSTMCell(F, H, key=key())
    full, hb = sp.step_jacobians(lstm, xs), sp.step_jacobians(lstm, xs, block="h")
    assert full.shape == (T, 2 * H, 2 * H) and hb.shape == (T, H, H)
    np.testing.assert_array_equal(hb, full[:, :H, :H])


def test_input_jacobians_are_exact():
    cell = jaxrnn.SimpleRNNCell(F, H, key=key())
    xs = inputs()
    Jx = sp.input_jacobians(cell, xs)
    np.testing.assert_allclose(Jx, tanh_derivative_along(cell, xs)[:, :, None] * cell.W_xh[None], atol=1e-6)


def linear_cell(a, n=16, dtype=jnp.float32):
    Q = ortho_group.rvs(n, random_state=0)
    cell = jaxrnn.SimpleRNNCell(F, n, key=key(), activation=lambda z: z, dtype=dtype)
    return set_weights(cell, W_hh=jnp.asarray(a * Q, dtype))


@pytest.mark.parametrize("a", [0.5, 0.9, 1.0, 1.1])
def test_orthogonal_linear_cell_products_and_exponents(a):
    """W_hh = a Q: every singular value of the k-step product is a^k (rel. 1e-5, k <= 1000);
    every Lyapunov exponent is ln a."""
    K = 1000
    with jax.enable_x64(True):
        J = sp.step_jacobians(linear_cell(a, dtype=jnp.float64), inputs(K, dtype=jnp.float64))
        logs = np.asarray(sp.log_singular_values_vs_lag(J))
        want = np.arange(1, K + 1)[:, None] * np.log(a) * np.ones((1, 16))
        np.testing.assert_allclose(np.exp(logs - want), 1.0, rtol=1e-5)
        np.testing.assert_allclose(sp.lyapunov_spectrum(J, transient=10).exponents, np.log(a), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("a", [0.5, 1.1])
def test_float32_products_where_the_raw_product_under_or_overflows(a):
    """In float32, 0.5^1000 underflows to 0 and 1.1^1000 overflows to inf; the QR form stays
    exact up to float32 rounding accumulated over k steps (documented: about k * 1e-7 in log)."""
    K = 1000
    J = sp.step_jacobians(linear_cell(a), inputs(K))
    raw = np.asarray(J[0])
    with np.errstate(all="ignore"):
        for _ in range(K - 1):
            raw = raw @ np.asarray(J[0])
        assert not np.isfinite(np.log(np.linalg.norm(raw)))  # 0, inf or nan: the raw product is lost
    logs = np.asarray(sp.log_singular_values_vs_lag(J))
    np.testing.assert_allclose(logs[-1], K * np.log(a), rtol=2e-4)
    np.testing.assert_allclose(sp.lyapunov_spectrum(J, transient=10).exponents, np.log(a), rtol=1e-4)


def test_products_below_float64_range():
    """0.5^1100 = 7e-332 underflows even float64; its logarithm does not."""
    with jax.enable_x64(True):
        J = sp.step_jacobians(linear_cell(0.5, 8, jnp.float64), inputs(1100, dtype=jnp.float64))
        logs = sp.log_singular_values(J, t=1100, k=0)
        np.testing.assert_allclose(logs, 1100 * np.log(0.5), rtol=1e-12)


def test_pair_and_top_k_agree_with_raw_products():
    with jax.enable_x64(True):
        cell = jaxrnn.LSTMCell(F, H, key=key(), dtype=jnp.float64)
        J = np.asarray(sp.step_jacobians(cell, inputs(30, dtype=jnp.float64)))
        t, k = 25, 7
        raw = np.eye(2 * H)
        for i in range(k, t):  # d s_t / d s_k = J_t ... J_{k+1}; J[i] = d s_{i+1} / d s_i
            raw = J[i] @ raw
        want = np.log(np.linalg.svd(raw, compute_uv=False))
        got = np.asarray(sp.log_singular_values(jnp.asarray(J), t, k))
        # the raw float64 SVD resolves singular values only down to ~1e-16 of the largest
        resolved = want > want[0] + np.log(1e-10)
        np.testing.assert_allclose(got[resolved], want[resolved], rtol=1e-8, atol=1e-8)
        # all of them, the smallest included: sum_i log sigma_i = log|det| = sum of log|det J_i|
        np.testing.assert_allclose(got.sum(), np.linalg.slogdet(J[k:t])[1].sum(), rtol=1e-9)
        norms = sp.log_spectral_norm_vs_lag(jnp.asarray(J), t=t)
        np.testing.assert_allclose(norms[t - k - 1], want[0], rtol=1e-8)


def test_singular_jacobians_give_exact_logs_and_minus_infinity_never_nan():
    """Trained models have singular step Jacobians (a relu unit off, a gate saturated in
    float32): zeros on R's diagonal, rows of zeros, a whole step of zeros. In float32 as
    in float64, the products' nonzero singular values still match a float64 SVD of the
    raw products, and the exactly-zero ones are -inf. (The first version scaled each row
    by R's diagonal, floored at the smallest float: here it was off by 1.96 in ln sigma,
    and on a trained character LSTM it gave -3.33 for -4.80 or NaN.)"""
    rng = np.random.default_rng(0)
    J = rng.normal(size=(12, 5, 5)) / np.sqrt(5)
    J[3, :, 1] = 0.0  # a unit whose state no longer matters: rank 4
    J[6, 2, :] = 0.0  # a unit switched off: a row of zeros
    J[7] = np.triu(J[7], 1)  # zeros on the diagonal, nilpotent
    J[11, 0, :] = 0.0  # the newest step, taken first: R's first diagonal entry exactly 0
    for dtype, rtol in ((jnp.float32, 2e-4), (jnp.float64, 1e-9)):
        with jax.enable_x64(dtype == jnp.float64):
            got = np.asarray(sp.log_singular_values_vs_lag(jnp.asarray(J, dtype)))  # t = 12, lags 1..12
        assert not np.isnan(got).any()
        raw = np.eye(5)
        for k in range(1, 13):
            raw = raw @ J[12 - k]  # d s_12 / d s_{12-k} = J_12 ... J_{12-k+1}
            want = np.linalg.svd(raw, compute_uv=False)
            resolved = want > want[0] * (1e-5 if dtype == jnp.float32 else 1e-12)
            np.testing.assert_allclose(got[k - 1][resolved], np.log(want[resolved]), rtol=rtol, atol=rtol)
    J[9] = 0.0  # a whole step of zeros: every product through it is 0
    got = np.asarray(sp.log_singular_values_vs_lag(jnp.asarray(J, jnp.float32)))
    assert np.all(np.isfinite(got[:2, 0])) and np.all(got[2:] == -np.inf) and not np.isnan(got).any()


def test_lyapunov_sum_is_mean_log_det():
    with jax.enable_x64(True):
        cell = jaxrnn.GRUCell(F, H, key=key(), W_hh_init=jaxrnn.init.orthogonal(2.0), dtype=jnp.float64)
        J = sp.step_jacobians(cell, inputs(400, dtype=jnp.float64))
        ly = sp.lyapunov_spectrum(J, transient=50)
        logdet = np.linalg.slogdet(np.asarray(J[50:]))[1].mean()
        np.testing.assert_allclose(float(ly.exponents.sum()), logdet, rtol=1e-9)
        assert np.all(np.diff(np.asarray(ly.exponents)) <= 1e-9)  # descending
        assert ly.running.shape == (350, 2 * H // 2) and np.all(np.isfinite(np.asarray(ly.stderr)))


@pytest.mark.parametrize("g,sign", [(0.5, -1), (2.0, 1)])
def test_random_tanh_network_order_to_chaos(g, sign):
    """W_hh ~ N(0, g^2/H), H = 500, no input: the largest exponent is < 0 at g = 0.5, > 0 at g = 2."""
    n = 500
    cell = jaxrnn.SimpleRNNCell(1, n, key=key(3), W_hh_init=jaxrnn.init.gaussian(g))
    h0 = jax.random.normal(key(4), (n,))
    J = sp.step_jacobians(cell, jnp.zeros((150, 1)), h0)
    ly = sp.lyapunov_spectrum(J, transient=50, num=4)
    assert np.sign(float(ly.exponents[0])) == sign, ly.exponents


def test_norm_of_product_is_bounded_by_sigma_max_power():
    cell = jaxrnn.SimpleRNNCell(F, H, key=key(), W_hh_init=jaxrnn.init.gaussian(1.5))
    J = sp.step_jacobians(cell, 3 * inputs(200))
    log_norms = sp.log_spectral_norm_vs_lag(J)
    bound = sp.pascanu_bound(cell)
    k = np.arange(1, 201)
    assert np.all(np.asarray(log_norms) <= k * np.log(float(bound.sigma_max)) + 1e-4)
    assert float(bound.gamma) == 1.0 and bool(bound.may_explode)
    small = sp.pascanu_bound(0.5 * cell.W_hh / bound.sigma_max, "sigmoid")
    assert bool(small.vanishing) and float(small.product) == pytest.approx(0.125, rel=1e-5)


def test_perturbation_gradients_equal_explicit_products():
    with jax.enable_x64(True):
        cell = jaxrnn.LSTMCell(F, H, key=key(), dtype=jnp.float64)
        xs = inputs(20, dtype=jnp.float64)
        G = np.asarray(sp.state_gradients(cell, xs))
        J = np.asarray(sp.step_jacobians(cell, xs))
        g_T = np.r_[np.ones(H), np.zeros(H)]  # L = sum h_T: dL/ds_T
        np.testing.assert_allclose(G[-1], g_T)
        back = g_T
        for k in range(19, 0, -1):  # dL/ds_k = J_{k+1}^T dL/ds_{k+1}
            back = J[k].T @ back
            np.testing.assert_allclose(G[k - 1], back, rtol=1e-9, atol=1e-14)
        norms = sp.gradient_norms_vs_lag(jnp.asarray(G))
        np.testing.assert_allclose(norms[19 - 0], np.linalg.norm(G[0]))
        np.testing.assert_allclose(sp.gradient_norms_vs_lag(jnp.asarray(G), H)[0], np.sqrt(H))


def test_memory_length():
    norms = jnp.array([1.0, 0.5, 0.1, 0.01, 1e-4])
    assert sp.memory_length(norms, 0.05) == (3, False)
    assert sp.memory_length(norms, 1e-6) == (5, True)  # never below: at least T = 5
    assert str(sp.memory_length(norms, 1e-6)) == ">= 5" and str(sp.memory_length(norms, 0.05)) == "3"


def test_everything_jit_compiles():
    cell = jaxrnn.GRUCell(F, H, key=key())
    xs = inputs()
    J = eqx.filter_jit(sp.step_jacobians)(cell, xs)
    jax.jit(sp.log_singular_values_vs_lag, static_argnums=(1, 2))(J)
    jax.jit(lambda J: sp.lyapunov_spectrum(J, transient=2))(J)
    eqx.filter_jit(sp.state_gradients)(cell, xs)


def test_bad_input():
    cell = jaxrnn.LSTMCell(F, H, key=key())
    xs = inputs()
    with pytest.raises(
        ValueError, match=r"state must have \(shape, dtype\) \(\(\(6,\), 'float32'\), \(\(6,\), 'float32'\)\)"
    ):
        sp.step_jacobians(cell, xs, jnp.zeros(H))
    with pytest.raises(ValueError, match="empty trajectory"):
        sp.step_jacobians(cell, jnp.zeros((0, F)))
    with pytest.raises(ValueError, match=r"xs must be one sequence of shape \(T, 3\)"):
        sp.step_jacobians(cell, jnp.zeros((2, T, F)))
    J = sp.step_jacobians(cell, xs)
    with pytest.raises(ValueError, match=r"max_lag must lie in \[1, t=12\].*larger than t"):
        sp.log_singular_values_vs_lag(J, max_lag=13)
    with pytest.raises(ValueError, match=r"need 0 <= k < t <= T = 12"):
        sp.log_singular_values(J, t=13, k=0)
    with pytest.raises(ValueError, match="square Jacobians"):
        sp.lyapunov_spectrum(J[:, :, :3])
    with pytest.raises(ValueError, match="W_hh must be a square matrix"):
        sp.pascanu_bound(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="must be square"):
        sp.eigenvalues(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="transient must lie"):
        sp.lyapunov_spectrum(J, transient=12)


STARTS = (0, 5, 6, 13, 21)  # a stream of segments [0, 5), [5, 6), [6, 13), [13, 21), [21, 30)


def stream_resets(T=30, starts=STARTS[1:]):
    return jnp.zeros(T, bool).at[jnp.array(starts)].set(True)


def segments(T=30):
    bounds = list(STARTS) + [T]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@pytest.mark.parametrize("cell_type", [jaxrnn.SimpleRNNCell, jaxrnn.LSTMCell, jaxrnn.GRUCell])
def test_stream_with_resets_is_each_segment_alone(cell_type):
    """A stream with resets: its states equal the layer's with the same resets, and its step
    Jacobians, input Jacobians and state gradients equal each segment run alone from the
    initial state, with the Jacobian at each segment's start zero (float64)."""
    with jax.enable_x64(True):
        cell = cell_type(F, H, key=key(3), dtype=jnp.float64)
        xs = inputs(30, seed=4, dtype=jnp.float64)
        s0 = jax.tree.map(lambda a: 0.3 * jax.random.normal(key(5), a.shape, a.dtype), cell.init_state())
        resets = stream_resets()
        layer = jaxrnn.layers.Recurrent(cell)
        traj = sp.trajectory(cell, xs, s0, resets=resets)
        batched = jax.tree.map(lambda a: a[None], s0)
        outs, _ = layer(xs[None], batched, resets=resets[None], initial=batched)
        np.testing.assert_allclose(traj.states[1:, :H], outs[0], rtol=1e-12, atol=1e-14)
        J = np.asarray(sp.step_jacobians(cell, xs, s0, resets=resets))
        Jx = np.asarray(sp.input_jacobians(cell, xs, s0, resets=resets))
        G = np.asarray(sp.state_gradients(cell, xs, s0, resets=resets))
        for a, b in segments():
            alone = np.asarray(sp.step_jacobians(cell, xs[a:b], s0))
            np.testing.assert_allclose(J[a + 1 : b], alone[1:], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(J[a], 0.0 if a > 0 else alone[0], rtol=1e-12, atol=0)
            np.testing.assert_allclose(Jx[a:b], sp.input_jacobians(cell, xs[a:b], s0), rtol=1e-12, atol=1e-14)
        a, b = segments()[-1]  # L = sum h_T reads the last segment only: no gradient reaches back across its start
        np.testing.assert_allclose(G[a:b], sp.state_gradients(cell, xs[a:b], s0), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(G[:a], 0.0)
        assert np.all(np.isneginf(np.asarray(sp.log_singular_values(jnp.asarray(J), t=8, k=3))))


def test_lyapunov_with_resets_pools_the_segments():
    """Pooled exponents = the kept-step-weighted mean of each segment's own estimate (its
    Jacobians after the cut, ``transient`` of them dropped); an orthogonal linear cell
    gives ln a on every stream."""
    with jax.enable_x64(True):
        cell = jaxrnn.GRUCell(F, H, key=key(6), dtype=jnp.float64)
        xs = inputs(30, seed=7, dtype=jnp.float64)
        resets = stream_resets()
        J = sp.step_jacobians(cell, xs, resets=resets)
        for transient in (0, 2):
            pooled = sp.lyapunov_spectrum(J, transient=transient, resets=resets, blocks=2)
            parts, weights = [], []
            for a, b in segments():
                chain = J[a + 1 : b] if a > 0 else J[a:b]  # a restarted step's Jacobian is the cut
                if chain.shape[0] > transient:
                    parts.append(sp.lyapunov_spectrum(chain, transient=transient).exponents)
                    weights.append(chain.shape[0] - transient)
            want = np.average(np.stack(parts), axis=0, weights=weights)
            np.testing.assert_allclose(pooled.exponents, want, rtol=1e-10)
            assert pooled.running.shape == (sum(weights), H)
        linear = sp.step_jacobians(linear_cell(0.9, dtype=jnp.float64), inputs(30, dtype=jnp.float64), resets=resets)
        np.testing.assert_allclose(sp.lyapunov_spectrum(linear, resets=resets).exponents, np.log(0.9), rtol=1e-9)


def test_resets_bad_input():
    cell = jaxrnn.GRUCell(F, H, key=key())
    xs = inputs()
    flag_error = r"resets must be a bool array of shape \(12,\) \(one flag per step\), got \('int32', \(12,\)\)"
    with pytest.raises(ValueError, match=flag_error):
        sp.step_jacobians(cell, xs, resets=jnp.zeros(T, jnp.int32))
    with pytest.raises(ValueError, match=r"resets must be a bool array of shape \(12,\)"):
        sp.state_gradients(cell, xs, resets=jnp.zeros((1, T), bool))
    resets = jnp.zeros(T, bool).at[jnp.arange(0, T, 2)].set(True)
    J = sp.step_jacobians(cell, xs, resets=resets)
    with pytest.raises(ValueError, match=r"no segment is longer than transient \+ 1 = 2 steps"):
        sp.lyapunov_spectrum(J, transient=1, resets=resets)
    with pytest.raises(ValueError, match="resets must be concrete"):
        jax.jit(lambda r: sp.lyapunov_spectrum(J, resets=r))(resets)
