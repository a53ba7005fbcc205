"""Skipped steps, written once: which steps run, and what a skipped step does.

A step where the mask is False is skipped: the state passes through unchanged and the
output is zero. Every scan in ``jaxrnn.layers`` builds its step from ``apply_mask``; the
fused backward differentiates it rather than restating it.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxrnn._checks import check_lengths
from jaxrnn.cells.base import State


def step_mask(
    batch: int, T: int, lengths: Int[Array, " B"] | None, mask: Bool[Array, "B T"] | None
) -> Bool[Array, "T B 1"] | None:
    """Validated time-major mask of the steps to run: ``t < lengths[b]`` and ``mask[b, t]``.

    None when neither is given (every step runs).

    Args:
        batch: B.
        T: steps.
        lengths: (B,) valid steps, or None.
        mask: (B, T) bool, or None.

    Returns:
        (T, B, 1) bool, or None.
    """
    valid = None
    if lengths is not None:
        valid = jnp.arange(T)[None, :] < check_lengths(lengths, batch, T)[:, None]
    if mask is not None:
        if getattr(mask, "dtype", None) != jnp.bool_ or tuple(mask.shape) != (batch, T):
            got = (getattr(mask, "dtype", type(mask).__name__), tuple(getattr(mask, "shape", ())))
            raise ValueError(f"mask must be a bool array of shape ({batch}, {T}), got {got}")
        valid = mask if valid is None else valid & mask
    return None if valid is None else jnp.swapaxes(valid, 0, 1)[..., None]


def apply_mask(
    m_t: Bool[Array, "B 1"] | None, new: State, old: State, output: Callable[[State], Float[Array, "B H"]]
) -> tuple[State, Float[Array, "B H"]]:
    """``(state, y)`` of one step: ``(new, output(new))`` where ``m_t``, ``(old, 0)`` elsewhere."""
    if m_t is None:
        return new, output(new)
    state = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), new, old)
    return state, jnp.where(m_t, output(state), 0)
