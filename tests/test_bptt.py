"""BPTT is jax.grad through the scan: parameter sharing (notes 000) and finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key
from jax.flatten_util import ravel_pytree

import jaxrnn

B, T, IN, H = 2, 6, 3, 4
MAKERS = {
    "rnn": lambda k, dt: jaxrnn.SimpleRNNCell(IN, H, key=k, dtype=dt),
    "relu_rnn": lambda k, dt: jaxrnn.SimpleRNNCell(IN, H, key=k, activation="relu", dtype=dt),
    "lstm": lambda k, dt: jaxrnn.LSTMCell(IN, H, key=k, dtype=dt),
    "gru": lambda k, dt: jaxrnn.GRUCell(IN, H, key=k, dtype=dt),
    "gru_before": lambda k, dt: jaxrnn.ResetBeforeGRUCell(IN, H, key=k, dtype=dt),
    "ln_lstm": lambda k, dt: jaxrnn.LSTMCell(IN, H, key=k, layer_norm=True, dtype=dt),
}


def per_step_losses(cell, xs, ys):
    """L_t = ||h_t - y_t||^2 for every t (B summed): shape (T,)."""
    hs, _ = jaxrnn.Recurrent(cell)(xs)
    return jnp.sum((hs - ys) ** 2, axis=(0, 2))


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_grad_of_sum_is_sum_of_per_step_grads(name):
    """dL/dW = sum_t dL_t/dW for the shared weights (notes 000, section 2)."""
    cell = MAKERS[name](key(), jnp.float32)
    xs, ys = jax.random.normal(key(1), (B, T, IN)), jax.random.normal(key(2), (B, T, H))
    total = jax.grad(lambda c: per_step_losses(c, xs, ys).sum())(cell)
    per_step = [jax.grad(lambda c, t=t: per_step_losses(c, xs, ys)[t])(cell) for t in range(T)]
    summed = jax.tree.map(lambda *gs: sum(gs), *per_step)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), total, summed)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_shared_weight_grad_is_sum_over_untied_copies(name):
    """Give step t its own copy W^(t) of the parameters; dL/dW = sum_t dL/dW^(t)."""
    cell = MAKERS[name](key(), jnp.float32)
    params, static = eqx.partition(cell, eqx.is_array)
    xs, ys = jax.random.normal(key(1), (B, T, IN)), jax.random.normal(key(2), (B, T, H))

    def untied_loss(copies):  # copies: params stacked along a leading T axis
        def body(state, inp):
            p_t, x_t, y_t = inp
            c = eqx.combine(p_t, static)
            state = c(state, x_t)
            return state, jnp.sum((c.output(state) - y_t) ** 2)

        inputs = (copies, jnp.swapaxes(xs, 0, 1), jnp.swapaxes(ys, 0, 1))
        return jax.lax.scan(body, cell.init_state((B,)), inputs)[1].sum()

    copies = jax.tree.map(lambda p: jnp.broadcast_to(p, (T, *p.shape)), params)
    per_copy = jax.grad(untied_loss)(copies)
    shared = jax.grad(lambda p: per_step_losses(eqx.combine(p, static), xs, ys).sum())(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a.sum(0), b, rtol=1e-4, atol=1e-6), per_copy, shared)
    # and the copies' gradients differ from step to step: each step contributes its own term
    assert not np.allclose(per_copy.W_hh[0], per_copy.W_hh[-1])


@pytest.mark.parametrize("name", list(MAKERS))
def test_grad_matches_central_differences_float64(name):
    with jax.enable_x64(True):
        cell = MAKERS[name](key(3), jnp.float64)
        cell = eqx.tree_at(lambda c: c.b_xh, cell, 0.1 * jax.random.normal(key(4), cell.b_xh.shape, jnp.float64))
        params, static = eqx.partition(cell, eqx.is_array)
        flat, unravel = ravel_pytree(params)
        xs = jax.random.normal(key(5), (B, T, IN), jnp.float64)
        ys = jax.random.normal(key(6), (B, T, H), jnp.float64)
        loss = jax.jit(lambda f: per_step_losses(eqx.combine(unravel(f), static), xs, ys).sum())
        grad = jax.grad(loss)(flat)
        eps = 1e-6
        E = jnp.eye(flat.size, dtype=jnp.float64) * eps
        fd = jax.vmap(lambda e: (loss(flat + e) - loss(flat - e)) / (2 * eps))(E)
        assert grad.dtype == jnp.float64
        rel = float(jnp.linalg.norm(grad - fd) / jnp.linalg.norm(fd))
        assert rel <= 1e-6, rel
