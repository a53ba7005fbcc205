"""A layer run chunk by chunk: an outer ``lax.scan`` over chunks of steps, each chunk
projecting its inputs and scanning them. Two uses:

- **remat** (``checkpoint=True``, chunks of about sqrt(T)): each chunk runs under
  ``jax.checkpoint``. The forward pass keeps only the state at each chunk boundary; the
  backward pass recomputes one chunk at a time, projection included, and backpropagates
  through it. So nothing of size (T, B, G) is ever live: per chunk (chunk, B, G), plus the
  boundary states (T / chunk, B, state) and the layer's own inputs and outputs. The price
  is one more forward pass.
- **small temporaries on the CPU** (``jaxrnn.layers.cpu_chunks``).

T is padded up to a whole number of chunks with skipped steps (mask False), which leave
the state unchanged and are cut from the outputs.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import State

# (state, xs, mask, resets) -> (state, ys)
ProjectAndScan = Callable[[State, Array, Array | None, Array | None], tuple[State, Array]]


def chunk_length(T: int, chunk: int | None) -> int:
    """Steps per chunk: ``chunk``, or about sqrt(T) balanced so that padding is under one per chunk."""
    if chunk is None:
        chunk = max(1, math.isqrt(T - 1) + 1) if T > 0 else 1
    n = -(-T // chunk)
    return -(-T // n) if n else chunk


def chunked(
    run: ProjectAndScan,
    state: State,
    xs: Float[Array, "T B F"],
    mask: Bool[Array, "T B 1"] | None,
    resets: Bool[Array, "T B 1"] | None = None,
    *,
    chunk: int | None = None,
    reverse: bool = False,
    checkpoint: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """``run(state, xs, mask, resets)`` chunk by chunk (each chunk under ``jax.checkpoint`` with
    ``checkpoint``); the same results.

    ``run`` is the layer's projection and scan over time-major ``xs``; ``chunk`` the
    steps per chunk (default about sqrt(T)). Returns ``(final_state, outputs)``.
    """
    T, B = xs.shape[:2]
    c = chunk_length(T, chunk)
    n = -(-T // c)
    if n <= 1 and not checkpoint:
        return run(state, xs, mask, resets)
    pad = n * c - T
    if pad:
        mask = jnp.ones((T, B, 1), bool) if mask is None else mask
        mask = jnp.concatenate([mask, jnp.zeros((pad, B, 1), bool)])
        xs = jnp.concatenate([xs, jnp.zeros((pad, *xs.shape[1:]), xs.dtype)])
        if resets is not None:
            resets = jnp.concatenate([resets, jnp.zeros((pad, B, 1), bool)])
    split = lambda a: None if a is None else a.reshape(n, c, *a.shape[1:])  # noqa: E731
    body = lambda s, inputs: run(s, *inputs)  # noqa: E731
    if checkpoint:
        body = jax.checkpoint(body, prevent_cse=False)
    state, ys = jax.lax.scan(body, state, (split(xs), split(mask), split(resets)), reverse=reverse)
    return state, ys.reshape(n * c, *ys.shape[2:])[:T]
