import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def set_weights(module, **arrays):
    """Replace named array fields of an Equinox module."""
    names = list(arrays)
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], module, [jnp.asarray(arrays[n]) for n in names])


def key(i=0):
    return jax.random.PRNGKey(i)
