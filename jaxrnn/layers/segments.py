"""Packed rows, read from their segment ids: where each segment starts and ends.

A packed row (``jaxrnn.datasets.pack``) holds several sequences end to end; ``segments``
(B, T) numbers them 0, 1, ... in order along each row, -1 on the unused steps at its end.
From it come the steps that run (``mask``), the steps where the state restarts
(``resets``), and each segment's first and last step, where a many-to-one model reads a
segment's final states.
"""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Int


def segment_flags(segments: Int[Array, "B T"]) -> tuple[Bool[Array, "B T"], Bool[Array, "B T"]]:
    """``(mask, resets)``: the steps that belong to a segment, and each segment's first step."""
    mask = segments >= 0
    before = jnp.concatenate([jnp.full_like(segments[:, :1], -1), segments[:, :-1]], axis=1)
    return mask, mask & (segments != before)


def segment_bounds(segments: Int[Array, "B T"]) -> tuple[Int[Array, "B T"], Int[Array, "B T"], Bool[Array, "B T"]]:
    """``(first, last, present)``, each (B, T) with segment s of a row at position s: the
    step where it starts, the step where it ends (0 where the row has no segment s), and
    whether the row has a segment s."""
    B, T = segments.shape
    rows = jnp.arange(B)[:, None]
    steps = jnp.broadcast_to(jnp.arange(T)[None, :], (B, T))
    slot = jnp.where(segments >= 0, segments, T)  # the padding's steps fall outside, dropped
    last = jnp.full((B, T), -1).at[rows, slot].max(steps, mode="drop")
    first = jnp.full((B, T), T).at[rows, slot].min(steps, mode="drop")
    present = last >= 0
    return jnp.where(present, first, 0), jnp.where(present, last, 0), present
