"""The diagonal of a step Jacobian ``d s_t / d s_{t-1}`` at O(n) cost, for quasi-DEER.

A ``FusedCell`` without layer norm reads ``h_{t-1}`` only through ``W_hh h_{t-1}`` and
otherwise unit by unit. Keep the recurrent term at its value and let only each unit's own
``h`` feed its own gates through the diagonals of ``W_hh``'s gate blocks: the step becomes
separable by unit, with the same value and the same diagonal Jacobian entries as the real
step. One JVP per state block (h; and c for the LSTM) with a tangent of ones on that block
then reads the diagonal off. Layer norm couples the units (it normalises across them);
for those cells, and for any other cell, the diagonal is taken from the dense Jacobian.
"""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxrnn.cells.base import Cell, FusedCell


def separable(cell: Cell) -> bool:
    """True if ``cell``'s step diagonal can be read at O(n) cost (a fused cell without layer norm).

    Args:
        cell: the cell.

    Returns:
        Whether ``step_diagonal`` applies.
    """
    coupled = [getattr(cell, name, None) for name in ("ln_x", "ln_h", "ln_c")]
    return isinstance(cell, FusedCell) and all(c is None for c in coupled)


def step_diagonal(cell: FusedCell, unravel, s, xw):
    """``diag(d step(s, xw) / d s)`` (n,) for the flat state ``s`` (n,) of a separable cell.

    Args:
        cell: a separable cell (``separable``).
        unravel: the flat state (n,) -> the cell's state.
        s: the flat state (n,).
        xw: the step's projected input (G,).

    Returns:
        (n,) the diagonal of the step Jacobian.
    """
    state = unravel(s)
    H, G = cell.hidden_size, cell.W_hh.shape[0] // cell.hidden_size
    h = cell.output(state)
    hw = h @ cell.W_hh.T
    own = jnp.diagonal(cell.W_hh.reshape(G, H, H), axis1=1, axis2=2).reshape(-1)  # W_hh[g*H + i, i]

    def by_unit(s2):
        st = unravel(s2)
        hw2 = hw + own * jnp.tile(cell.output(st) - h, G)
        return ravel_pytree(cell.gates(st, xw, cell.recurrent(hw2)))[0]

    blocks = s.shape[0] // H
    diag = []
    for k in range(blocks):
        tangent = jnp.zeros_like(s).at[k * H : (k + 1) * H].set(1)
        diag.append(jax.jvp(by_unit, (s,), (tangent,))[1][k * H : (k + 1) * H])
    return jnp.concatenate(diag)
