"""The read-ahead scan against a Python loop written out by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.layers import read_ahead


def body(c, x):
    a, m = x
    new = jnp.tanh(c * 0.9 + a)
    new = new if m is None else jnp.where(m, new, c)
    return new, (new * 2.0, a.sum())


def by_hand(c, a, m, reverse):
    ys, sums = [None] * a.shape[0], [None] * a.shape[0]
    order = range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])
    for t in order:
        new = np.tanh(c * 0.9 + a[t])
        c = new if m is None else np.where(m[t], new, c)
        ys[t], sums[t] = c * 2.0, a[t].sum()  # the body emits its new carry, doubled
    return c, np.stack(ys), np.array(sums)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("unroll", [1, 3])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("scan", [read_ahead.scan, read_ahead.platform_scan])
def test_matches_a_hand_loop(scan, masked, unroll, reverse):
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (7, 4, 3))
    m = jax.random.bernoulli(k2, 0.7, (7, 4, 1)) if masked else None
    c0 = jnp.full((4, 3), 0.3)
    c, (ys, sums) = jax.jit(lambda c0, a, m: scan(body, c0, (a, m), reverse=reverse, unroll=unroll))(c0, a, m)
    c_ref, ys_ref, sums_ref = by_hand(np.asarray(c0), np.asarray(a), None if m is None else np.asarray(m), reverse)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)  # float32 against float64
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums, sums_ref, rtol=1e-5, atol=1e-5)


def test_empty_sequence_returns_the_initial_carry():
    c, (ys, sums) = read_ahead.scan(body, jnp.ones((2, 3)), (jnp.zeros((0, 2, 3)), None))
    np.testing.assert_array_equal(c, 1.0)
    assert ys.shape == (0, 2, 3) and sums.shape == (0,)


def test_gradients_equal_those_of_lax_scan():
    a = jax.random.normal(jax.random.key(1), (6, 2, 3))

    def loss(scan, c0, a):
        c, (ys, _) = scan(body, c0, (a, None), reverse=True)
        return jnp.sum(c**2) + jnp.sum(ys * a)

    c0 = jnp.full((2, 3), 0.1)
    g = jax.grad(lambda c0, a: loss(read_ahead.scan, c0, a), argnums=(0, 1))(c0, a)
    g_ref = jax.grad(lambda c0, a: loss(jax.lax.scan, c0, a), argnums=(0, 1))(c0, a)
    for x, y in zip(g, g_ref):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
