"""The reference unroll: ``cell.step`` in a ``lax.scan``, differentiated by autodiff.

Every other path of the layers (``jaxrnn.layers.engine``) computes what this one does; it
runs for any cell, on any platform, and is what ``Engine.plain()`` gives.
"""

import jax
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import Cell, State
from jaxrnn.layers.mask import apply_mask
from jaxrnn.layers.read_ahead import Scan
from jaxrnn.layers.resets import restart


def plain_scan(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    resets: Bool[Array, "T B 1"] | None = None,
    initial: State | None = None,
    reverse: bool = False,
    unroll: int = 1,
    scan: Scan = jax.lax.scan,
) -> tuple[State, Float[Array, "T B H"]]:
    """``cell.step`` over the time-major input terms ``xw`` (T, B, G) from ``state``.

    Where ``resets`` (T, B, 1) is True the state returns to ``initial`` before the step;
    where ``mask`` (T, B, 1) is False the state is then carried unchanged and the output
    is zero. ``scan`` is ``lax.scan`` or a function of its signature (the engine passes
    ``read_ahead.platform_scan``). Returns ``(final_state, outputs)``, outputs (T, B, H).
    """

    def body(s, inputs):
        xw_t, m_t, r_t = inputs
        s = restart(s, r_t, initial)
        return apply_mask(m_t, cell.step(s, xw_t), s, cell.output)

    return scan(body, state, (xw, mask, resets), reverse=reverse, unroll=unroll)
