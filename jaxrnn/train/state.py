"""The training state: everything an update reads and writes, as arrays on the device."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PRNGKeyArray, PyTree


class TrainState(eqx.Module):
    """Model, optimizer state, the RNN state carried across TBPTT windows, the dropout key,
    the number of updates run (``step``) and of those skipped as non-finite (``skipped``).

    A pure update maps ``(state, batch) -> (state, metrics)``; a checkpoint stores the
    arrays of this record and resuming from them continues bit for bit.
    """

    model: eqx.Module
    opt_state: PyTree
    carry: PyTree
    key: PRNGKeyArray
    step: Int[Array, ""]
    skipped: Int[Array, ""]

    @classmethod
    def create(cls, model, optimizer: optax.GradientTransformation, carry, key: PRNGKeyArray) -> "TrainState":
        """The state before the first update."""
        opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
        zero = jnp.zeros((), jnp.int32)
        return cls(model, opt_state, carry, key, zero, zero)


def learning_rate(opt_state) -> Array:
    """The learning rate ``optax.inject_hyperparams`` put in ``opt_state`` (NaN if none or several).

    Schedules leave a ``learning_rate`` entry of their own (the schedule's state) beside
    the value; only array values count.
    """
    found = [v for _, v in optax.tree.get_all_with_path(opt_state, "learning_rate") if isinstance(v, jax.Array)]
    return jnp.asarray(found[0], jnp.float32) if len(found) == 1 else jnp.asarray(math.nan, jnp.float32)


def all_finite(tree) -> Array:
    """True when every inexact array in ``tree`` is free of NaN and inf."""
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)
