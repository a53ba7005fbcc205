"""State resets, written once: where a reset flag is set, the state returns to the initial one.

A reset belongs before a step: the step then runs from the initial state (zeros, or a
state the caller gives), as at the start of a new episode or sequence. ``Recurrent.step``
and the models' ``step`` take a flag per sequence (B,).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from jaxrnn.cells.base import State


def restart(state: State, reset: Bool[Array, " B"] | None, initial: State) -> State:
    """``state`` with the rows (sequences) where ``reset`` is True replaced by ``initial``'s;
    ``state`` itself when ``reset`` is None."""
    if reset is None:
        return state
    reset = jnp.asarray(reset)
    batch = jax.tree.leaves(state)[0].shape[0]
    if reset.dtype != jnp.bool_ or reset.shape != (batch,):
        raise ValueError(f"reset must be a bool array of shape ({batch},), got {reset.dtype} {tuple(reset.shape)}")
    return jax.tree.map(lambda s, i: jnp.where(reset.reshape(-1, *[1] * (s.ndim - 1)), i, s), state, initial)
