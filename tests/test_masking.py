"""Steps past a sequence's end influence nothing, forward or backward, whatever the padding holds."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_KINDS, key

import jaxrnn

F, H, B, T = 3, 5, 4, 7
CELLS = {k: v for k, v in CELL_KINDS.items() if k in ("rnn", "rnn_relu_ln", "lstm", "lstm_ln", "gru", "gru_before")}


def loss(model, xs, lengths, mask):
    ys, states = model(xs, lengths=lengths, mask=mask)
    return jnp.sum(ys**2) + sum(jnp.sum(s**2) for s in jax.tree.leaves(states))


@pytest.mark.parametrize("layout", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_padding_past_the_lengths_changes_no_output_and_no_gradient(cell, layout):
    make, kwargs = CELLS[cell]
    if layout == "bidirectional":
        model = jaxrnn.make_rnn(make, F, H, key=key(1), num_layers=2, bidirectional=True, **kwargs)
    else:
        model = jaxrnn.Recurrent(make(F, H, key=key(1), **kwargs), reverse=layout == "reverse")
    xs = jax.random.normal(key(2), (B, T, F))
    lengths = jnp.array([7, 3, 0, 5])
    mask = jnp.ones((B, T), bool).at[0, 2].set(False)  # a skipped step inside a sequence too
    skipped = (jnp.arange(T)[None, :] >= lengths[:, None]) | ~mask
    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    (want, (g_model, g_xs)) = grad(model, jnp.where(skipped[..., None], 0.0, xs), lengths, mask)
    for pad in (jnp.nan, jnp.inf, -jnp.inf, 1e30):
        value, (g_model_pad, g_xs_pad) = grad(model, jnp.where(skipped[..., None], pad, xs), lengths, mask)
        assert value == want
        jax.tree.map(
            np.testing.assert_array_equal, eqx.filter(g_model_pad, eqx.is_array), eqx.filter(g_model, eqx.is_array)
        )
        np.testing.assert_array_equal(g_xs_pad, g_xs)
        assert not np.asarray(g_xs_pad)[np.asarray(skipped)].any()  # the padding gets no gradient
