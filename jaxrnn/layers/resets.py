"""State resets, written once: where a reset flag is set, the state returns to the initial one.

A reset belongs before a step: the step then runs from the initial state (zeros, or a
state the caller gives), as at the start of a new episode or sequence. ``Recurrent.step``
and the models' ``step`` take a flag per sequence (B,); the sequence calls take one per
sequence and step (B, T), which ``step_resets`` makes the time-major flags every scan of
``jaxrnn.layers`` reads, and every scan builds its step on ``restart``.

A reverse layer runs each segment from its last step to its first, so it restarts after
a segment's last step: before its step t wherever a segment starts at t + 1. A skipped
step (``jaxrnn.layers.mask``) is not there: its flag is ignored, and a segment's first
step is the first one that runs.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from jaxrnn.cells.base import State


def restart(state: State, reset: Bool[Array, "B ..."] | None, initial: State) -> State:
    """``state`` with the rows (sequences) where ``reset`` is True replaced by ``initial``'s;
    ``state`` itself when ``reset`` is None. ``reset`` is (B,) or (B, 1)."""
    if reset is None:
        return state
    rows = reset.reshape(-1)
    return jax.tree.map(lambda s, i: jnp.where(rows.reshape(-1, *[1] * (s.ndim - 1)), i, s), state, initial)


def check_reset(reset, batch: int) -> Bool[Array, " B"] | None:
    """One step's flags, checked: a bool array of shape (B,), or None."""
    if reset is None:
        return None
    reset = jnp.asarray(reset)
    if reset.dtype != jnp.bool_ or reset.shape != (batch,):
        raise ValueError(f"reset must be a bool array of shape ({batch},), got {reset.dtype} {tuple(reset.shape)}")
    return reset


def step_resets(
    batch: int, T: int, resets, valid: Bool[Array, "T B 1"] | None, *, reverse: bool
) -> Bool[Array, "T B 1"] | None:
    """The time-major flags (T, B, 1) a scan reads from ``resets`` (B, T): where a step
    restarts from the initial state; flags at skipped steps (``valid`` False) dropped.
    For ``reverse``, shifted to the segments' ends (a flag at t + 1 restarts before step
    t; a skipped step passes the restarted state on). None when ``resets`` is None."""
    if resets is None:
        return None
    if getattr(resets, "dtype", None) != jnp.bool_ or tuple(resets.shape) != (batch, T):
        got = (str(getattr(resets, "dtype", type(resets).__name__)), tuple(getattr(resets, "shape", ())))
        raise ValueError(f"resets must be a bool array of shape ({batch}, {T}) (batch, time), got {got}")
    flags = jnp.swapaxes(jnp.asarray(resets), 0, 1)[..., None]
    if valid is not None:
        flags = flags & valid
    if reverse:
        flags = jnp.concatenate([flags[1:], jnp.zeros_like(flags[:1])])
    return flags
