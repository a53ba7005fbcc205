"""Parallel-in-time evaluation (DEER, quasi-DEER, ELK, quasi-ELK) against the sequential
layer, in float64: outputs, final states and gradients (weights, inputs, initial state)
for every kind of cell, with lengths and a mask; the linear scan against a loop; ELK's
Kalman step against the least-squares problem it solves; the O(n) diagonal against the
dense Jacobian's; divergence (ELK stays finite) and the fallback."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_KINDS, key

import jaxrnn
from jaxrnn import parallel

B, T, IN, H = 3, 16, 2, 4


def setup(name, k=0, T=T):
    cls, kwargs = CELL_KINDS[name]
    keys = iter(jax.random.split(key(k), 4))
    cell = cls(IN, H, key=next(keys), dtype=jnp.float64, **kwargs)
    xs = jax.random.normal(next(keys), (B, T, IN), jnp.float64)
    state = jax.tree.map(lambda z: 0.5 * jax.random.normal(next(keys), z.shape, z.dtype), cell.init_state((B,)))
    return cell, xs, state


def loss_of(ys, state, w):
    """A loss that reads every output and the whole final state."""
    return jnp.sum(w * ys) + sum(jnp.sum(jnp.sin(s)) for s in jax.tree.leaves(state))


CASES = [(name, method) for name in CELL_KINDS for method in ("deer", "quasi", "elk", "quasi_elk")]


@pytest.mark.parametrize("name,method", CASES)
def test_parallel_equals_the_sequential_layer(name, method):
    with jax.enable_x64(True):
        cell, xs, state = setup(name)
        w = jax.random.normal(key(9), (B, T, H), jnp.float64)
        lengths = jnp.array([T, 9, 0])
        mask = jnp.ones((B, T), bool).at[0, 3].set(False)

        def sequential(args):
            ys, s = jaxrnn.Recurrent(args[0])(args[1], args[2], lengths=lengths, mask=mask)
            return loss_of(ys, s, w), (ys, s)

        def in_parallel(args):
            ys, s, info = parallel.unroll(*args, lengths=lengths, mask=mask, method=method)
            return loss_of(ys, s, w), (ys, s, info)

        # gradients with respect to every weight, the inputs and the initial state at once
        g_want, want = eqx.filter_jit(eqx.filter_grad(sequential, has_aux=True))((cell, xs, state))
        g_got, (ys, s, info) = eqx.filter_jit(eqx.filter_grad(in_parallel, has_aux=True))((cell, xs, state))
        assert bool(info.converged) and 1 <= int(info.iterations) <= (T if method in ("deer", "quasi") else 50)
        for got, ref in zip(jax.tree.leaves((ys, s)), jax.tree.leaves(want)):
            np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)
        assert len(jax.tree.leaves(g_got)) == len(jax.tree.leaves(g_want)) > 4
        for got, ref in zip(jax.tree.leaves(g_got), jax.tree.leaves(g_want)):
            np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


def test_dense_newton_converges_in_few_iterations_on_a_contracting_cell():
    """DEER's quadratic convergence: a GRU at its default initialisation (contracting) over
    T = 400 needs a handful of iterations; quasi-DEER needs more, and both far fewer than T."""
    with jax.enable_x64(True):
        cell, xs, _ = setup("gru", T=400)
        _, _, deer = parallel.unroll(cell, xs, method="deer")
        _, _, quasi = parallel.unroll(cell, xs, method="quasi")
        assert bool(deer.converged) and bool(quasi.converged)
        assert int(deer.iterations) <= 10 and int(deer.iterations) < int(quasi.iterations) < 100


@pytest.mark.parametrize(
    "name", [n for n, (c, kw) in CELL_KINDS.items() if parallel.separable(c(IN, H, key=key(), **kw))]
)
def test_step_diagonal_equals_the_dense_jacobians(name):
    with jax.enable_x64(True):
        cell, xs, state = setup(name)
        flat = jnp.concatenate(jax.tree.leaves(state), axis=-1)[0]
        n = flat.shape[0]

        def unflat(v):
            return jax.tree.unflatten(jax.tree.structure(state), [v[k * H : (k + 1) * H] for k in range(n // H)])

        xw = cell.project(xs[0, 0])
        step = lambda p: jnp.concatenate(jax.tree.leaves(cell.step(unflat(p), xw)))  # noqa: E731
        np.testing.assert_allclose(
            parallel.step_diagonal(cell, unflat, flat, xw), jnp.diagonal(jax.jacfwd(step)(flat)), rtol=1e-12
        )


@pytest.mark.parametrize("diagonal", [False, True])
def test_linear_recurrence_equals_a_loop(diagonal):
    with jax.enable_x64(True):
        k1, k2, k3 = jax.random.split(key(3), 3)
        shape = (50, 2, 3) if diagonal else (50, 2, 3, 3)
        A = 0.6 * jax.random.normal(k1, shape, jnp.float64)
        b = jax.random.normal(k2, (50, 2, 3), jnp.float64)
        s0 = jax.random.normal(k3, (2, 3), jnp.float64)
        s, A_np, b_np = np.asarray(s0), np.asarray(A), np.asarray(b)
        want = []
        for t in range(50):
            s = (A_np[t] * s if diagonal else np.einsum("bij,bj->bi", A_np[t], s)) + b_np[t]
            want.append(s)
        solve = jax.jit(parallel.linear_recurrence, static_argnums=3)
        np.testing.assert_allclose(solve(A, b, s0, diagonal), np.stack(want), rtol=1e-10)


@pytest.mark.parametrize("diagonal", [False, True])
def test_elk_step_solves_its_least_squares_problem(diagonal):
    """argmin_S sum_t ||s_t - A_t s_(t-1) - b_t||^2 + damping ||s_t - y_t||^2, by numpy's lstsq."""
    with jax.enable_x64(True):
        T, n, damping = 9, 3, 0.7
        k = jax.random.split(key(6), 4)
        A = jax.random.normal(k[0], (T, 2, n) if diagonal else (T, 2, n, n), jnp.float64)
        b, y = (jax.random.normal(kk, (T, 2, n), jnp.float64) for kk in k[1:3])
        s0 = jax.random.normal(k[3], (2, n), jnp.float64)
        got = jax.jit(parallel.damped_step, static_argnums=5)(A, b, s0, y, damping, diagonal)
        for i in range(2):
            mats = [np.diag(a) if diagonal else np.asarray(a) for a in A[:, i]]
            rows, rhs = [], []
            for t in range(T):
                dyn = np.zeros((n, T * n))
                dyn[:, t * n : (t + 1) * n] = np.eye(n)
                if t:
                    dyn[:, (t - 1) * n : t * n] = -mats[t]
                rows += [dyn, np.sqrt(damping) * np.eye(n, T * n, t * n)]
                rhs += [
                    np.asarray(b[t, i]) + (mats[0] @ np.asarray(s0[i]) if t == 0 else 0),
                    np.sqrt(damping) * y[t, i],
                ]
            want = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0].reshape(T, n)
            np.testing.assert_allclose(got[:, i], want, rtol=1e-10, atol=1e-12)


def test_gauss_jordan_solves_like_numpy():
    """ELK's own dense solve, with a matrix that needs pivoting (zero in the first pivot)."""
    with jax.enable_x64(True):
        X = np.array(jax.random.normal(key(7), (5, 6, 6), jnp.float64))
        X[0, 0, 0] = 0.0
        Y = np.asarray(jax.random.normal(key(8), (5, 6, 2), jnp.float64))
        np.testing.assert_allclose(parallel.kalman.gauss_jordan(X, Y), np.linalg.solve(X, Y), rtol=1e-10, atol=1e-12)


def test_chaotic_cell_elk_stays_finite_and_the_fallback_gives_the_sequential_answer():
    """A chaotic tanh RNN (W_hh ~ N(0, 3^2/H)) over T = 100 in float32: DEER's first linear
    solve overflows (its Jacobian products grow like 3^t), while ELK's and quasi-ELK's
    damped iterates stay finite. Out of budget or diverged, the sequential
    scan gives the answer: outputs and gradients are the sequential layer's (float32
    rounding apart)."""
    cell = jaxrnn.SimpleRNNCell(IN, 16, key=key(4), W_hh_init=jaxrnn.init.gaussian(3.0))
    xs = jax.random.normal(key(5), (2, 100, IN))
    loss = lambda ys, s: jnp.sum(ys**2) + jnp.sum(s)  # noqa: E731
    want, g_want = eqx.filter_jit(eqx.filter_value_and_grad(lambda c: loss(*jaxrnn.Recurrent(c)(xs))))(cell)

    @eqx.filter_jit
    def run(cell, method, budget):
        ys, s, info = parallel.unroll(cell, xs, method=method, max_iter=budget)
        return loss(ys, s), info

    (value, info), g = eqx.filter_value_and_grad(run, has_aux=True)(cell, "deer", 3)
    assert not bool(info.converged) and float(info.residual) == np.inf and int(info.iterations) == 1  # overflow
    np.testing.assert_allclose(value, want, rtol=1e-5)
    for got, ref in zip(jax.tree.leaves(g), jax.tree.leaves(g_want)):
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-5)
    for method in ("elk", "quasi_elk"):  # the loop stops at a non-finite iterate: 8 finite ones, then the fallback
        (value, info) = run(cell, method, 8)
        assert int(info.iterations) == 8 and np.isfinite(float(info.residual)) and not bool(info.converged)
        np.testing.assert_allclose(value, want, rtol=1e-5)


def test_bad_arguments_are_named():
    cell = jaxrnn.GRUCell(IN, H, key=key())
    xs = jnp.zeros((1, 5, IN))
    with pytest.raises(
        ValueError, match="method must be one of deer, quasi, elk, quasi_elk, sequential or auto, got .DEER."
    ):
        parallel.unroll(cell, xs, method="DEER")
    with pytest.raises(ValueError, match="damping must be > 0, got 0"):
        parallel.unroll(cell, xs, method="elk", damping=0)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1, got 0"):
        parallel.unroll(cell, xs, max_iter=0)
    with pytest.raises(ValueError, match="tol must be > 0"):
        parallel.unroll(cell, xs, tol=-1.0)
    with pytest.raises(TypeError, match=r"unroll got unknown keyword\(s\) \['length'\]; it takes \['lengths', 'mask'"):
        parallel.unroll(cell, xs, length=jnp.array([3]))
    ys, state, info = parallel.unroll(cell, jnp.zeros((2, 0, IN)))
    assert ys.shape == (2, 0, H) and state.shape == (2, H)
