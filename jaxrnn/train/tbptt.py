"""Truncated BPTT windows: an update every k1 steps, backpropagating k2 >= k1 steps.

The update at time t (a multiple of k1) differentiates the losses of steps
[t - k1, t) through the steps [t - k2, t) only: the state entering that window is a
constant. Consecutive windows overlap by k2 - k1 steps; the state entering the next
window is the one reached k1 steps into this one. ``k1 = k2 = k`` is plain TBPTT(k):
chunks of k steps, state carried across chunks without gradient; ``k = T`` is full BPTT.

To give every window one static shape, the time axis is padded with k2 - k1 skipped
steps in front and skipped steps at the end up to a multiple of k1.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array


class Geometry(NamedTuple):
    """Window geometry for a sequence of length T."""

    k1: int
    k2: int
    count: int
    front: int
    padded: int


def geometry(T: int, k1: int, k2: int) -> Geometry:
    """The windows covering T steps with stride k1 and length k2."""
    count = max(1, -(-T // k1))
    front = k2 - k1
    return Geometry(k1, k2, count, front, front + count * k1)


def parse(tbptt) -> tuple[int, int] | None:
    """``None``, ``k`` or ``(k1, k2)`` -> ``(k1, k2)``; ValueError naming tbptt otherwise."""
    if tbptt is None:
        return None
    whole = lambda k: isinstance(k, int) and not isinstance(k, bool) and k > 0  # noqa: E731
    pair = isinstance(tbptt, tuple | list) and len(tbptt) == 2
    k1, k2 = tuple(tbptt) if pair else (tbptt, tbptt)
    if not (whole(k1) and whole(k2)):
        raise ValueError(f"tbptt must be a positive int k or a pair (k1, k2) of positive ints, got {tbptt!r}")
    if k2 < k1:
        raise ValueError(f"tbptt=(k1, k2) needs k2 >= k1 (backpropagate at least the updated steps), got {tbptt!r}")
    return k1, k2


def pad_time(a: Array, w: Geometry, T: int) -> Array:
    """Pad axis 1 (time, length T) with zeros: ``w.front`` in front, the rest at the end."""
    pad = [(0, 0)] * a.ndim
    pad[1] = (w.front, w.padded - w.front - T)
    return jnp.pad(a, pad)


def window(a: Array, i, w: Geometry) -> Array:
    """Window i (possibly traced) of a padded array: steps [i*k1, i*k1 + k2) of axis 1."""
    return jax.lax.dynamic_slice_in_dim(a, i * w.k1, w.k2, axis=1)
