"""A layer run chunk by chunk: an outer ``lax.scan`` over chunks of steps, each chunk
projecting its inputs and scanning them. Two uses:

- **remat** (``rematerialized``, chunks of about sqrt(T)): each chunk runs under
  ``jax.checkpoint`` and takes its steps from the layer's batch-major input itself. The
  forward pass keeps only the state at each chunk boundary; the backward pass recomputes
  one chunk at a time, projection included, and backpropagates through it. So nothing of
  size (T, B, F) or (T, B, G) is ever made: per chunk (chunk, B, G), plus the boundary
  states (T / chunk, B, state) and the layer's own inputs and outputs. The price is one
  more forward pass.
- **small temporaries on the CPU** (``chunked``, used by ``jaxrnn.layers.cpu_chunks``).

T is padded up to a whole number of chunks with skipped steps (mask False), which leave
the state unchanged and are cut from the outputs. For remat that padding copies the
input once: a T that is a multiple of the chunk (the default chunk divides T when T is
a square, or pass ``chunk=``) makes no copy.
"""

import functools
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


def _padded(T: int, B: int, c: int, mask, resets):
    """The mask and resets padded with skipped steps to a whole number of chunks of ``c``."""
    pad = -(-T // c) * c - T
    if not pad:
        return mask, resets
    mask = jnp.ones((T, B, 1), bool) if mask is None else mask
    mask = jnp.concatenate([mask, jnp.zeros((pad, B, 1), bool)])
    if resets is not None:
        resets = jnp.concatenate([resets, jnp.zeros((pad, B, 1), bool)])
    return mask, resets


def _split(a: Array | None, n: int, c: int) -> Array | None:
    return None if a is None else a.reshape(n, c, *a.shape[1:])


def chunked(
    run: ProjectAndScan,
    state: State,
    xs: Float[Array, "T B F"],
    mask: Bool[Array, "T B 1"] | None,
    resets: Bool[Array, "T B 1"] | None = None,
    *,
    chunk: int | None = None,
    reverse: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """``run(state, xs, mask, resets)`` chunk by chunk over time-major ``xs``; the same results.

    ``run`` is the layer's projection and scan over time-major ``xs``; ``chunk`` the
    steps per chunk (default about sqrt(T)). Returns ``(final_state, outputs)``.
    """
    T, B = xs.shape[:2]
    c = chunk_length(T, chunk)
    n = -(-T // c)
    if n <= 1:
        return run(state, xs, mask, resets)
    mask, resets = _padded(T, B, c, mask, resets)
    if n * c > T:
        xs = jnp.concatenate([xs, jnp.zeros((n * c - T, *xs.shape[1:]), xs.dtype)])
    body = lambda s, inputs: run(s, *inputs)  # noqa: E731
    state, ys = jax.lax.scan(body, state, (_split(xs, n, c), _split(mask, n, c), _split(resets, n, c)), reverse=reverse)
    return state, ys.reshape(n * c, *ys.shape[2:])[:T]


def rematerialized(
    run: ProjectAndScan,
    prepare: Callable[[Array, Array | None], Array],
    state: State,
    xs: Float[Array, "B T F"],
    mask: Bool[Array, "T B 1"] | None,
    resets: Bool[Array, "T B 1"] | None = None,
    *,
    chunk: int | None = None,
    reverse: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """``run`` chunk by chunk, each chunk under ``jax.checkpoint``; the same results.

    Chunk i reads steps [i c, (i + 1) c) of the batch-major ``xs`` (B, T, F) and makes them
    what ``run`` reads with ``prepare(xs_chunk, mask_chunk)`` (time-major, masked), inside
    the checkpoint: the whole input is never copied time-major. Returns
    ``(final_state, outputs)``, outputs (T, B, H).
    """
    B, T = xs.shape[:2]
    c = chunk_length(T, chunk)
    n = -(-T // c)
    mask, resets = _padded(T, B, c, mask, resets)
    if n * c > T:
        xs = jnp.pad(xs, ((0, 0), (0, n * c - T), (0, 0)))

    @functools.partial(jax.checkpoint, prevent_cse=False)  # in a scan, CSE cannot undo it
    def body(s, inputs):
        i, m, r = inputs
        return run(s, prepare(jax.lax.dynamic_slice_in_dim(xs, i * c, c, axis=1), m), m, r)

    state, ys = jax.lax.scan(body, state, (jnp.arange(n), _split(mask, n, c), _split(resets, n, c)), reverse=reverse)
    return state, ys.reshape(n * c, *ys.shape[2:])[:T]
