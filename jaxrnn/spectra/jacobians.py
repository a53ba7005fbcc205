"""Exact step Jacobians along a trajectory, from ``jax.jacfwd`` of the cell's step.

All functions here take one unbatched sequence ``xs`` (T, F) and an initial state
(``None`` for zeros; the LSTM's is the pair (h, c)). States are flattened with
``ravel_pytree``: n = H, or 2H for the LSTM with h first, then c.

``resets`` (T,) bool: a stream of several segments (episodes, packed sequences). Before
step t where it is True the state returns to the initial state, as in the layers
(``jaxrnn.layers.resets``); so ``d s_t / d s_{t-1}`` is exactly zero there: the chain of
Jacobians is cut at each segment's start, and every product across it is zero.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float

from jaxrnn._checks import check_state
from jaxrnn.cells.base import Cell, State
from jaxrnn.layers.resets import restart


class Trajectory(NamedTuple):
    """``states`` (T + 1, n): s_0 ... s_T flattened; ``xw`` (T, G): projected inputs."""

    states: Float[Array, "T1 n"]
    xw: Float[Array, "T G"]


def as_cell(obj) -> Cell:
    """The cell whose steps to differentiate: a ``Cell``, or the cell of a ``Recurrent`` layer,
    of a one-layer unidirectional stack, or of a model built on one (``model.rnn``).
    TypeError saying what to pass otherwise."""
    if isinstance(obj, Cell):
        return obj
    if hasattr(obj, "cell") and isinstance(obj.cell, Cell):
        return obj.cell
    layers = getattr(getattr(obj, "rnn", obj), "layers", None)
    if layers is not None and len(layers) == 1 and isinstance(getattr(layers[0], "cell", None), Cell):
        return layers[0].cell
    raise TypeError(
        f"cell must be a Cell, a Recurrent layer, or a one-layer unidirectional stack or model, got a "
        f"{type(obj).__name__}: pass one layer's cell, e.g. model.rnn.layers[i].cell "
        "(or .forward.cell / .backward.cell of a Bidirectional layer)"
    )


def check_trajectory(cell: Cell, xs) -> None:
    """``xs`` must be one non-empty sequence (T, F) of ``cell``'s inputs."""
    if getattr(xs, "ndim", None) != 2 or xs.shape[-1] != cell.input_size:
        raise ValueError(
            f"xs must be one sequence of shape (T, {cell.input_size}), got {tuple(getattr(xs, 'shape', ()))}"
        )
    if xs.shape[0] == 0:
        raise ValueError("xs is an empty trajectory (T = 0): there is no step to differentiate")


def check_resets(resets, T: int) -> Bool[Array, " T"] | None:
    """A stream's segment starts: a bool array of shape (T,), or None."""
    if resets is None:
        return None
    if getattr(resets, "dtype", None) != jnp.bool_ or tuple(getattr(resets, "shape", ())) != (T,):
        got = (str(getattr(resets, "dtype", type(resets).__name__)), tuple(getattr(resets, "shape", ())))
        raise ValueError(f"resets must be a bool array of shape ({T},) (one flag per step), got {got}")
    return jnp.asarray(resets)


def flat_step(cell: Cell, state0: State):
    """``(step(s_flat, xw) -> s_flat, s0_flat, unravel)`` for the cell's state structure."""
    s0, unravel = ravel_pytree(state0)

    def step(s, xw):
        return ravel_pytree(cell.step(unravel(s), xw))[0]

    return step, s0, unravel


def initial_state(cell: Cell, state0: State | None) -> State:
    """``state0`` checked against ``cell``'s state, or the cell's zero state if None."""
    if state0 is None:
        return cell.init_state()
    check_state(state0, cell.init_state())
    return state0


def trajectory(
    cell: Cell, xs: Float[Array, "T F"], state0: State | None = None, *, resets: Bool[Array, " T"] | None = None
) -> Trajectory:
    """Run the cell over ``xs`` and keep every (flattened) state s_0 ... s_T; with
    ``resets``, each step where it is True starts from s_0 instead of s_{t-1}.

    Args:
        cell: the cell (or a ``Recurrent`` layer, for its cell); one sequence, no batch axis.
        xs: the inputs (T, F).
        state0: s_0 (None: the zero state).
        resets: (T,) bool: where True, step t starts from ``state0`` (an episode's start).

    Returns:
        A ``Trajectory``: ``states`` (T + 1, n), the flattened states s_0 ... s_T (n = H,
            or 2H for the LSTM's (h, c)), and ``xw`` (T, G), the projected inputs.
    """
    cell = as_cell(cell)
    check_trajectory(cell, xs)
    resets = check_resets(resets, xs.shape[0])
    step, s0, _ = flat_step(cell, initial_state(cell, state0))
    xw = cell.project(xs)
    flags = jnp.zeros(xs.shape[0], bool) if resets is None else resets

    def body(s, inputs):
        x, reset = inputs
        s = step(restart(s, reset, s0), x)
        return s, s

    _, states = jax.lax.scan(body, s0, (xw, flags))
    return Trajectory(jnp.concatenate([s0[None], states]), xw)


def step_inputs(traj: Trajectory, resets: Bool[Array, " T"] | None) -> Float[Array, "T n"]:
    """The state each step ran from: s_{t-1}, or s_0 where the step restarted."""
    before = traj.states[:-1]
    return before if resets is None else jnp.where(resets[:, None], traj.states[0], before)


def step_jacobians(
    cell: Cell,
    xs: Float[Array, "T F"],
    state0: State | None = None,
    *,
    block: str = "full",
    resets: Bool[Array, " T"] | None = None,
) -> Float[Array, "T n n"]:
    """``J[t-1] = d s_t / d s_{t-1}`` for t = 1..T, from ``jax.jacfwd`` of the step, vmapped over time.

    Args:
        cell: the cell.
        xs: the inputs (T, F).
        state0: s_0 (None: the zero state).
        block: "full" (the whole state) or "h": the (H, H) block d h_t / d h_{t-1} (for the
            LSTM this holds c_{t-1} fixed, so products of h-blocks are *not* d h_t / d h_k;
            use the full state for gradients).
        resets: (T,) bool: ``J[t-1]`` is zero where step t restarts (the chain cut at each
            segment's start; ``lyapunov_spectrum(J, resets=resets)`` then estimates per
            segment).

    Returns:
        (T, n, n) step Jacobians (n = H, or 2H for the LSTM; (T, H, H) with ``block="h"``).
    """
    if block not in ("full", "h"):
        raise ValueError(f"block must be 'full' or 'h', got {block!r}")
    cell = as_cell(cell)
    state0 = initial_state(cell, state0)
    step, _, _ = flat_step(cell, state0)
    traj = trajectory(cell, xs, state0, resets=resets)
    J = jax.vmap(jax.jacfwd(step, argnums=0))(step_inputs(traj, resets), traj.xw)
    if resets is not None:
        J = jnp.where(resets[:, None, None], 0.0, J)
    H = cell.hidden_size
    return J[:, :H, :H] if block == "h" else J


def input_jacobians(
    cell: Cell, xs: Float[Array, "T F"], state0: State | None = None, *, resets: Bool[Array, " T"] | None = None
) -> Float[Array, "T n F"]:
    """``d s_t / d x_t`` for t = 1..T, through the input projection.

    Args:
        cell: the cell.
        xs: the inputs (T, F).
        state0: s_0 (None: the zero state).
        resets: (T,) bool: a restarted step's Jacobian is taken from the initial state.

    Returns:
        (T, n, F): row t - 1 is d s_t / d x_t.
    """
    cell = as_cell(cell)
    state0 = initial_state(cell, state0)
    step, _, _ = flat_step(cell, state0)
    traj = trajectory(cell, xs, state0, resets=resets)
    return jax.vmap(jax.jacfwd(lambda s, x: step(s, cell.project(x)), argnums=1))(step_inputs(traj, resets), xs)
