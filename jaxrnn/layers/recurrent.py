"""Unroll one cell over a sequence with ``jax.lax.scan``.

Batching convention of all of jaxrnn's layers and models: arrays are batch-major,
inputs (B, T, F), outputs (B, T, H), states (B, H) (the LSTM's: a pair). Cells work on
any leading shape, so a single sequence is a batch of one.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxrnn._checks import check_sequence, check_size, check_state
from jaxrnn.cells.base import Cell, FusedCell, State
from jaxrnn.layers import bias_column, chunks, cpu_chunks, read_ahead
from jaxrnn.layers.fused_scan import fused_scan
from jaxrnn.layers.mask import apply_mask, step_mask


def plain_scan(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[State, Float[Array, "T B H"]]:
    """``cell.step`` over the time-major input terms ``xw``, differentiated by autodiff.

    Where ``mask`` is False the state is carried unchanged and the output is zero.
    Returns ``(final_state, outputs)``.
    """

    def body(s, inputs):
        xw_t, m_t = inputs
        return apply_mask(m_t, cell.step(s, xw_t), s, cell.output)

    return read_ahead.platform_scan(body, state, (xw, mask), reverse=reverse, unroll=unroll)


def scan_cell(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[State, Float[Array, "T B H"]]:
    """``plain_scan``'s contract by the fastest path the cell allows.

    A ``FusedCell`` takes ``fused_scan`` (its backward forms dW_hh after the loop); any
    other cell (the reset-before GRU) the plain scan.
    """
    scan = fused_scan if isinstance(cell, FusedCell) else plain_scan
    return scan(cell, xw, state, mask, reverse=reverse, unroll=unroll)


class Recurrent(eqx.Module):
    """One recurrent layer: a cell unrolled over time.

    ``reverse`` runs from the last valid step to the first (outputs stay aligned with
    the inputs); ``unroll`` is ``lax.scan``'s. ``remat=True`` is the lowest-memory mode
    for BPTT: chunks of ``chunk`` steps (default about sqrt(T)) are checkpointed and
    recomputed, projection included, in the backward pass (``jaxrnn.layers.chunks``).
    """

    cell: Cell
    reverse: bool = eqx.field(static=True, default=False)
    unroll: int = eqx.field(static=True, default=1)
    remat: bool = eqx.field(static=True, default=False)
    chunk: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_size(self.unroll, "unroll")
        if self.chunk is not None:
            check_size(self.chunk, "chunk")

    @property
    def input_size(self) -> int:
        """Features per input step."""
        return self.cell.input_size

    @property
    def output_size(self) -> int:
        """Features per output step (H)."""
        return self.cell.hidden_size

    def init_state(self, batch: int) -> State:
        """The zero state for a batch of ``batch`` sequences."""
        return self.cell.init_state((batch,))

    def last_output(self, state: State) -> Float[Array, "B H"]:
        """The output ``h`` held in a final state."""
        return self.cell.output(state)

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        state: State | None = None,
        *,
        lengths: Int[Array, " B"] | None = None,
        mask: Bool[Array, "B T"] | None = None,
    ) -> tuple[Float[Array, "B T H"], State]:
        """Run over ``xs`` (B, T, F) from ``state`` (zeros if None).

        With ``lengths`` (B,), outputs at t >= lengths[b] are zero and the final state is
        the state after the last valid step (for ``reverse``: after step 0, the valid
        steps being taken from lengths[b]-1 down to 0). More generally, a step where
        ``mask`` (B, T) is False is skipped: the state passes through unchanged, the
        output is zero, and the input there influences nothing, forward or backward,
        whatever it holds (NaN and inf included). T = 0 gives an empty (B, 0, H) output and the initial state.
        Returns ``(outputs, final_state)``.
        """
        check_sequence(xs, self.cell.input_size)
        B, T, _ = xs.shape
        if state is None:
            state = self.init_state(B)
        else:
            check_state(state, self.init_state(B))
        valid = step_mask(B, T, lengths, mask)
        xs = jnp.swapaxes(xs, 0, 1).astype(self.cell.W_xh.dtype)
        if valid is not None:
            # a skipped step's input is never read: zeros there keep whatever the padding
            # holds (NaN, inf) out of the backward pass, where it would meet 0 * NaN
            xs = jnp.where(valid, xs, jnp.zeros((), xs.dtype))

        def run(state, xs, valid):
            xw = bias_column.project(self.cell, xs)
            return scan_cell(self.cell, xw, state, valid, reverse=self.reverse, unroll=self.unroll)

        if self.remat:
            state, ys = chunks.chunked(run, state, xs, valid, chunk=self.chunk, reverse=self.reverse, checkpoint=True)
        else:
            width = self.cell.W_xh.shape[0]
            state, ys = cpu_chunks.platform_run(run, state, xs, valid, width=width, reverse=self.reverse)
        return jnp.swapaxes(ys, 0, 1), state


def with_remat(model, remat: bool = True, *, chunk: int | None = None):
    """``model`` with ``remat`` (and the remat ``chunk``, steps per checkpoint) set on every
    ``Recurrent`` layer inside it."""
    is_layer = lambda x: isinstance(x, Recurrent)  # noqa: E731

    def set_remat(x):
        return dataclasses.replace(x, remat=remat, chunk=chunk) if is_layer(x) else x

    return jax.tree.map(set_remat, model, is_leaf=is_layer)
