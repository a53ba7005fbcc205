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

from jaxrnn._checks import check_lengths, check_sequence, check_state
from jaxrnn.cells.base import Cell, State
from jaxrnn.layers import read_ahead
from jaxrnn.layers.fused_scan import fused_scan


def scan_cell(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    reverse: bool = False,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """Run ``cell.step`` over the time-major projected inputs ``xw``.

    Where ``mask`` is False the state is carried unchanged and the output is zero.
    ``remat`` recomputes each step in the backward pass instead of storing its
    intermediates. Cells with one fused recurrent matmul (``cell.fused``) take
    ``fused_scan``, whose backward pass forms dW_hh after the loop; the others (the
    reset-before GRU) the plain scan, with ``remat`` as ``jax.checkpoint`` of the step.
    Returns ``(final_state, outputs)``.
    """
    if cell.fused:
        return fused_scan(cell, xw, state, mask, reverse=reverse, unroll=unroll, remat=remat)

    def step(s, xw_t):
        return cell.step(s, xw_t)

    if remat:
        step = jax.checkpoint(step)

    def body(s, inputs):
        xw_t, m_t = inputs
        new = step(s, xw_t)
        if m_t is None:
            return new, cell.output(new)
        s = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), new, s)
        return s, jnp.where(m_t, cell.output(new), 0)

    return read_ahead.platform_scan(body, state, (xw, mask), reverse=reverse, unroll=unroll)


def step_mask(
    batch: int, T: int, lengths: Int[Array, " B"] | None, mask: Bool[Array, "B T"] | None
) -> Bool[Array, "T B 1"] | None:
    """Validated time-major mask of the steps to run: ``t < lengths[b]`` and ``mask[b, t]``.

    None when neither is given (every step runs).
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


class Recurrent(eqx.Module):
    """One recurrent layer: a cell unrolled over time.

    ``reverse`` runs from the last valid step to the first (outputs stay aligned with
    the inputs); ``unroll`` is ``lax.scan``'s; ``remat`` trades compute for memory in BPTT.
    """

    cell: Cell
    reverse: bool = eqx.field(static=True, default=False)
    unroll: int = eqx.field(static=True, default=1)
    remat: bool = eqx.field(static=True, default=False)

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
        xw = self.cell.project(xs)
        state, ys = scan_cell(self.cell, xw, state, valid, reverse=self.reverse, unroll=self.unroll, remat=self.remat)
        return jnp.swapaxes(ys, 0, 1), state


def with_remat(model, remat: bool = True):
    """``model`` with ``remat`` set on every ``Recurrent`` layer inside it."""
    is_layer = lambda x: isinstance(x, Recurrent)  # noqa: E731
    return jax.tree.map(lambda x: dataclasses.replace(x, remat=remat) if is_layer(x) else x, model, is_leaf=is_layer)
