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

from jaxrnn._checks import check_count, check_state
from jaxrnn.cells.base import Cell, State
from jaxrnn.layers import engine as engines
from jaxrnn.layers.engine import Engine
from jaxrnn.layers.resets import check_reset, restart, step_resets


class Recurrent(eqx.Module):
    """One recurrent layer: a cell unrolled over time.

    ``Recurrent(cell, reverse=False, unroll=1, remat=False, chunk=None, engine=Engine())``.

    Args:
        cell: the cell to unroll.
        reverse: run from the last valid step to the first (outputs stay aligned with the
            inputs). Default False.
        unroll: ``lax.scan``'s unroll. Default 1.
        remat: the lowest-memory mode for BPTT: chunks of ``chunk`` steps are checkpointed
            and recomputed, projection included, in the backward pass
            (``jaxrnn.layers.chunked_scan``). Default False.
        chunk: steps per remat chunk. Default None: about sqrt(T).
        engine: the fast paths the layer may take (``jaxrnn.layers.Engine``). Default:
            every one; ``Engine.plain()`` for the reference scan.
    """

    cell: Cell
    reverse: bool = eqx.field(static=True, default=False)
    unroll: int = eqx.field(static=True, default=1)
    remat: bool = eqx.field(static=True, default=False)
    chunk: int | None = eqx.field(static=True, default=None)
    engine: Engine = eqx.field(static=True, default=Engine())

    def __check_init__(self):
        check_count(self.unroll, "unroll")
        if self.chunk is not None:
            check_count(self.chunk, "chunk")
        if not isinstance(self.engine, Engine):
            raise TypeError(f"engine must be a jaxrnn.layers.Engine, got {type(self.engine).__name__}")

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
        resets: Bool[Array, "B T"] | None = None,
        initial: State | None = None,
    ) -> tuple[Float[Array, "B T H"], State]:
        """Run over ``xs`` (B, T, F) from ``state`` (zeros if None).

        Args:
            xs: the inputs (B, T, F).
            state: the state before the first step (B, H) (the LSTM's: a pair ``(h, c)``);
                None: zeros.
            lengths: (B,) int: steps t >= lengths[b] are skipped. The final state is the
                state after the last valid step (for ``reverse``: after step 0, the valid
                steps being taken from lengths[b]-1 down to 0).
            mask: (B, T) bool: a step where False is skipped: the state passes through
                unchanged, the output is zero, and the input there influences nothing,
                forward or backward, whatever it holds (NaN and inf included).
            resets: (B, T) bool: where True a new segment (an episode, a packed sequence)
                starts: the state returns to ``initial`` before that step, so each segment
                computes what it computes run alone. A reverse layer restarts after each
                segment's last step instead (before step t where ``resets[b, t + 1]``).
                A flag at a skipped step is ignored (the step is not there). Default None.
            initial: the state a reset returns to; None: zeros (what an episode starts
                from); pass ``initial=state`` to restart from the state given.

        Returns:
            ``(outputs, final_state)``: outputs (B, T, H), zero at skipped steps. T = 0
                gives an empty (B, 0, H) output and the initial state.
        """
        state, valid, lengths = engines.checked(self.cell, xs, state, lengths, mask)
        B, T = xs.shape[:2]
        flags = step_resets(B, T, resets, valid, reverse=self.reverse)
        zero = self.cell.init_state((B,))
        if initial is not None:
            check_state(initial, zero, "initial")
        state, ys = engines.run(
            self.engine, self.cell, xs, state, valid,
            resets=flags, initial=zero if initial is None else initial,
            lengths=lengths, prefix=mask is None,
            reverse=self.reverse, unroll=self.unroll, remat=self.remat, chunk=self.chunk,
        )  # fmt: skip
        return jnp.swapaxes(ys, 0, 1), state

    def step(
        self,
        state: State,
        x: Float[Array, "B F"],
        *,
        reset: Bool[Array, " B"] | None = None,
        initial: State | None = None,
    ) -> tuple[Float[Array, "B H"], State]:
        """One step: what an agent acting in an environment, or a streaming predictor,
        calls once per step; the sequence call computes the same, step after step.

        Args:
            state: the state before the step (``init_state(B)`` at the start).
            x: the step's inputs (B, F).
            reset: (B,) bool: where True, the sequence restarts before this step, from
                ``initial`` (an episode's first step). Default None: no reset.
            initial: the state a reset returns to (default: the zero state).

        Returns:
            ``(y, state)``: the output ``h`` (B, H) and the state after the step.

        A reverse layer cannot step (its first output needs the last input): ValueError.
        """
        if self.reverse:
            raise ValueError("a reverse layer cannot act step by step: its first output needs the last input")
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must be one step of inputs (B, {self.input_size}), got shape {tuple(x.shape)}")
        zero = self.cell.init_state((x.shape[0],))
        check_state(state, zero)
        initial = zero if initial is None else initial
        check_state(initial, zero, "initial")
        reset = check_reset(reset, x.shape[0])
        new = self.cell(restart(state, reset, initial), x.astype(self.cell.W_xh.dtype))
        return self.cell.output(new), new


def with_remat(model, remat: bool = True, *, chunk: int | None = None):
    """``model`` with ``remat`` set on every ``Recurrent`` layer inside it.

    Args:
        model: any module holding ``Recurrent`` layers.
        remat: checkpoint the layers (memory growing as sqrt(T), one more forward pass).
        chunk: steps per checkpoint (None: about sqrt(T)).

    Returns:
        The new model (the input is unchanged).
    """
    is_layer = lambda x: isinstance(x, Recurrent)  # noqa: E731

    def set_remat(x):
        return dataclasses.replace(x, remat=remat, chunk=chunk) if is_layer(x) else x

    return jax.tree.map(set_remat, model, is_leaf=is_layer)


def with_engine(model, engine: Engine):
    """``model`` with ``engine`` (the fast paths allowed) set on every ``Recurrent`` layer inside it.

    Args:
        model: any module holding ``Recurrent`` layers (a model, ``Stacked``, a layer).
        engine: an ``Engine``.

    Returns:
        The new model (the input is unchanged).
    """
    if not isinstance(engine, Engine):
        raise TypeError(f"engine must be a jaxrnn.layers.Engine, got {type(engine).__name__}")
    is_layer = lambda x: isinstance(x, Recurrent)  # noqa: E731
    return jax.tree.map(lambda x: dataclasses.replace(x, engine=engine) if is_layer(x) else x, model, is_leaf=is_layer)
