"""Initialisers for the weight matrices of the cells.

Each function returns an initialiser ``init(key, shape, dtype) -> Array`` with the
signature of ``jax.nn.initializers``. Cells apply the recurrent initialiser to each
(H, H) gate block of ``W_hh`` separately, so "orthogonal" means every gate's block is
orthogonal.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

__all__ = ["Initializer", "gaussian", "glorot_uniform", "identity", "orthogonal"]

Initializer = Callable[[PRNGKeyArray, tuple[int, ...], jnp.dtype], Array]


def orthogonal(scale: float = 1.0) -> Initializer:
    """Orthogonal matrix times ``scale`` (Saxe et al. 2014); scale != 1 is "scaled orthogonal"."""
    return jax.nn.initializers.orthogonal(scale)


def identity(scale: float = 1.0) -> Initializer:
    """``scale`` times the identity: the IRNN initialisation of Le et al. (2015)."""

    def init(key, shape, dtype=jnp.float32):
        del key
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"identity init needs a square shape, got {shape}")
        return scale * jnp.eye(shape[0], dtype=dtype)

    return init


def gaussian(gain: float = 1.0) -> Initializer:
    """Entries i.i.d. N(0, gain^2 / n) with n = shape[-1]: the random-network ensemble
    of Sompolinsky et al. (1988), chaotic for tanh when gain > 1."""

    def init(key, shape, dtype=jnp.float32):
        return gain / jnp.sqrt(shape[-1]).astype(dtype) * jax.random.normal(key, shape, dtype)

    return init


glorot_uniform: Callable[[], Initializer] = jax.nn.initializers.glorot_uniform
"""Glorot/Xavier uniform, the default for ``W_xh`` (fan_in = input size, fan_out = H)."""


def gate_blocks(init: Initializer, key: PRNGKeyArray, n_gates: int, rows: int, cols: int, dtype) -> Array:
    """Stack ``n_gates`` independently initialised (rows, cols) blocks into (n_gates*rows, cols).

    Half-precision weights (bfloat16, float16) are drawn in float32 and cast: the
    orthogonal initialiser's QR has no half-precision kernel, and the cast keeps the
    float32 draw's distribution as closely as the format allows.
    """
    keys = jax.random.split(key, n_gates)
    drawn = jnp.promote_types(dtype, jnp.float32)
    return jnp.concatenate([init(k, (rows, cols), drawn) for k in keys], axis=0).astype(dtype)
