"""Bidirectional layer: a forward and a reverse ``Recurrent`` over the same inputs."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxrnn.cells.base import State
from jaxrnn.layers import engine
from jaxrnn.layers.recurrent import Recurrent

_MERGES = ("concat", "sum")


class Bidirectional(eqx.Module):
    """Runs ``forward`` left to right and ``backward`` right to left and merges them.

    ``merge='concat'`` gives (B, T, 2H) with the forward half first (PyTorch's layout);
    ``'sum'`` gives (B, T, H). The state is the pair ``(forward_state, backward_state)``.

    Args:
        forward: a ``Recurrent`` layer (``reverse=False``).
        backward: a ``Recurrent`` layer with ``reverse=True`` and the same input size.
        merge: "concat" or "sum".
    """

    forward: Recurrent
    backward: Recurrent
    merge: str = eqx.field(static=True, default="concat")

    def __post_init__(self):
        if self.merge not in _MERGES:
            raise ValueError(f"merge must be one of {_MERGES}, got {self.merge!r}")
        if self.forward.reverse or not self.backward.reverse:
            raise ValueError("Bidirectional needs forward.reverse=False and backward.reverse=True")
        if self.forward.input_size != self.backward.input_size:
            raise ValueError(
                f"forward and backward input sizes differ: {self.forward.input_size} vs {self.backward.input_size}"
            )
        if self.merge == "sum" and self.forward.output_size != self.backward.output_size:
            raise ValueError("merge='sum' needs equal hidden sizes in both directions")

    @property
    def input_size(self) -> int:
        """Features per input step."""
        return self.forward.input_size

    @property
    def output_size(self) -> int:
        """Features per output step: 2H for 'concat', H for 'sum'."""
        if self.merge == "sum":
            return self.forward.output_size
        return self.forward.output_size + self.backward.output_size

    def init_state(self, batch: int) -> tuple[State, State]:
        """Zero states of both directions."""
        return self.forward.init_state(batch), self.backward.init_state(batch)

    def _merge(self, a: Array, b: Array) -> Array:
        return jnp.concatenate([a, b], axis=-1) if self.merge == "concat" else a + b

    def last_output(self, state: tuple[State, State]) -> Float[Array, "B out"]:
        """Merged final ``h`` of both directions (the backward one has seen the whole sequence)."""
        return self._merge(self.forward.last_output(state[0]), self.backward.last_output(state[1]))

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        state: tuple[State, State] | None = None,
        *,
        lengths: Int[Array, " B"] | None = None,
        mask: Bool[Array, "B T"] | None = None,
        resets: Bool[Array, "B T"] | None = None,
        initial: tuple[State, State] | None = None,
    ) -> tuple[Float[Array, "B T out"], tuple[State, State]]:
        """Outputs of both directions merged per step, and ``(forward_state, backward_state)``.

        Args:
            xs: the inputs (B, T, F).
            state: ``(forward_state, backward_state)`` before the first step of each
                direction; None: zeros.
            lengths, mask: skipped steps, as in ``Recurrent``.
            resets: (B, T) bool, where a segment starts: the forward direction restarts
                before that step, the backward one after the segment's last step, so each
                direction of each segment sees that segment alone.
            initial: the pair of states a reset returns to; None: zeros.

        Returns:
            ``(outputs, (forward_state, backward_state))``, outputs (B, T, out).

        On a GPU an LSTM pair without resets runs as one cuDNN call
        (``jaxrnn.layers.engine.run_pair``).
        """
        s_f, s_b = (None, None) if state is None else state
        i_f, i_b = (None, None) if initial is None else initial

        def separately():
            y_f, f = self.forward(xs, s_f, lengths=lengths, mask=mask, resets=resets, initial=i_f)
            y_b, b = self.backward(xs, s_b, lengths=lengths, mask=mask, resets=resets, initial=i_b)
            return y_f, y_b, (f, b)

        if resets is not None:
            y_f, y_b, states = separately()
            return self._merge(y_f, y_b), states

        y_f, y_b, states = engine.run_pair(
            self.forward, self.backward, xs, (s_f, s_b), lengths=lengths, mask=mask, separately=separately
        )
        return self._merge(y_f, y_b), states
