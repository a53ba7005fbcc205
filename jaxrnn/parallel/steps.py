"""A cell's steps on flat states, for every (time, sequence) at once: what Newton's method
on a trajectory evaluates and differentiates (``unroll``, ``predictability``)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxrnn.cells.base import Cell, State
from jaxrnn.parallel.diagonal import separable, step_diagonal


def flattener(state: State) -> tuple[Callable, Callable]:
    """``flat(state) -> (..., n)`` and its inverse, for states whose leaves end in H."""
    leaves, treedef = jax.tree.flatten(state)
    H = leaves[0].shape[-1]

    def flat(s):
        return jnp.concatenate(jax.tree.leaves(s), axis=-1)

    def unflat(v):
        return jax.tree.unflatten(treedef, [v[..., k * H : (k + 1) * H] for k in range(len(leaves))])

    return flat, unflat


def masked_step(cell: Cell, unflat: Callable, p: Float[Array, " n"], xw: Float[Array, " G"], m) -> Float[Array, " n"]:
    """One sequence, one step on a flat state; the state passes through where ``m`` is False."""
    return jnp.where(m, flat_step(cell, unflat, p, xw), p)


def batched_steps(cell: Cell, unflat: Callable, P: Float[Array, "T B n"], xw: Float[Array, "T B G"], m) -> Array:
    """Every step ``(t, b)`` at once from the start states ``P`` (T, B, n): (T, B, n)."""
    one = lambda p, x, m_: masked_step(cell, unflat, p, x, m_)  # noqa: E731
    return jax.vmap(jax.vmap(one))(P, xw, m)


def batched_jacobians(
    cell: Cell, unflat: Callable, P: Float[Array, "T B n"], xw: Float[Array, "T B G"], m, diagonal: bool
) -> Array:
    """The step Jacobians at ``P``: (T, B, n, n), or their diagonals (T, B, n) when ``diagonal``
    (at O(n) cost for a separable cell); the identity where a step is skipped."""
    if not diagonal:
        jac = jax.jacfwd(lambda p, x, m_: masked_step(cell, unflat, p, x, m_))
        return jax.vmap(jax.vmap(jac))(P, xw, m)
    if separable(cell):
        d = jax.vmap(jax.vmap(lambda p, x: step_diagonal(cell, unflat, p, x)))(P, xw)
    else:
        dense = jax.vmap(jax.vmap(jax.jacfwd(lambda p, x: flat_step(cell, unflat, p, x))))(P, xw)
        d = jnp.diagonal(dense, axis1=-2, axis2=-1)
    return jnp.where(m, d, jnp.ones((), d.dtype))


def flat_step(cell: Cell, unflat: Callable, p: Float[Array, " n"], xw: Float[Array, " G"]) -> Float[Array, " n"]:
    """``cell.step`` on one flat state."""
    return jnp.concatenate(jax.tree.leaves(cell.step(unflat(p), xw)), axis=-1)
