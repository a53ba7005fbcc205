"""The reference unroll: ``cell.step`` in a ``lax.scan``, differentiated by autodiff.

Every other path of the layers (``jaxrnn.layers.engine``) computes what this one does; it
runs for any cell, on any platform, and is what ``Engine.plain()`` gives.
"""

import jax
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import Cell, State
from jaxrnn.layers.mask import apply_mask
from jaxrnn.layers.read_ahead import Scan


def plain_scan(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    reverse: bool = False,
    unroll: int = 1,
    scan: Scan = jax.lax.scan,
) -> tuple[State, Float[Array, "T B H"]]:
    """``cell.step`` over the time-major input terms ``xw`` (T, B, G) from ``state``.

    Where ``mask`` (T, B, 1) is False the state is carried unchanged and the output is
    zero. ``scan`` is ``lax.scan`` or a function of its signature (the engine passes
    ``read_ahead.platform_scan``). Returns ``(final_state, outputs)``, outputs (T, B, H).
    """

    def body(s, inputs):
        xw_t, m_t = inputs
        return apply_mask(m_t, cell.step(s, xw_t), s, cell.output)

    return scan(body, state, (xw, mask), reverse=reverse, unroll=unroll)
