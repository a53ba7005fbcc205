"""Many-to-one and synchronised many-to-many models (notes 003, section 3 c and d)."""

import abc
from typing import Unpack

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from jaxrnn.layers.options import SequenceOptions
from jaxrnn.layers.segments import segment_flags
from jaxrnn.layers.stacked import Stacked
from jaxrnn.models.head import Head


def check_head(rnn: Stacked, head: Head) -> None:
    """The head must read what the network emits: ValueError naming both sizes otherwise."""
    if not isinstance(rnn, Stacked):
        raise TypeError(f"rnn must be a Stacked (jaxrnn.make_rnn builds one), got {type(rnn).__name__}")
    if head.W_hy.shape[1] != rnn.output_size:
        raise ValueError(
            f"head reads {head.W_hy.shape[1]} features but rnn emits {rnn.output_size} "
            "(a bidirectional layer with merge='concat' emits 2 * hidden_size): build Head(rnn.output_size, ...)"
        )


class _AbstractHeadOnRNN(eqx.Module):
    """What both models share: a ``Stacked`` network read by a ``Head``, called as
    ``model(xs, lengths=, key=, inference=)``; the training and prediction protocols."""

    rnn: eqx.AbstractVar[Stacked]
    head: eqx.AbstractVar[Head]

    def __check_init__(self):
        check_head(self.rnn, self.head)

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        *,
        lengths: Int[Array, " B"] | None = None,
        resets: Bool[Array, "B T"] | None = None,
        segments: Int[Array, "B T"] | None = None,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> Array:
        """The logits: (B, out) for ``ManyToOne``, (B, T, out) for ``ManyToMany``.

        Args:
            xs: the inputs (B, T, F).
            lengths: (B,) int: steps t >= lengths[b] are skipped (padding).
            resets: (B, T) bool, where a new segment starts: every layer's state returns to
                zeros before that step (``jaxrnn.layers.Recurrent``).
            segments: (B, T) int, packed rows (``jaxrnn.datasets.pack``): the segment of
                its row each step belongs to, -1 after the last; it sets the resets and the
                steps that run. A ``ManyToOne`` then gives (B, T, out): segment s's logits
                at position s (``Packed.unpack`` puts them back in order).
            key: the dropout key (training with dropout).
            inference: True turns dropout off.
        """
        mask = None
        if segments is not None:
            if lengths is not None or resets is not None:
                raise ValueError("segments say where each sequence lies: pass no lengths or resets with them")
            dtype, shape = getattr(segments, "dtype", None), tuple(getattr(segments, "shape", ()))
            if shape != tuple(xs.shape[:2]) or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
                got = (str(dtype or type(segments).__name__), shape)
                raise ValueError(f"segments must be an int array of shape {tuple(xs.shape[:2])}, got {got}")
            mask, resets = segment_flags(segments)
        ys, state = self.rnn(xs, lengths=lengths, mask=mask, resets=resets, key=key, inference=inference)
        return self.read(ys, state, segments)

    @abc.abstractmethod
    def read(self, ys: Float[Array, "B T H"], state: tuple, segments: Int[Array, "B T"] | None = None) -> Array:
        """The logits from the network's outputs and final states (and packed rows' segments)."""

    def init_state(self, batch: int) -> tuple:
        """The zero state of a batch of ``batch`` sequences: where ``step`` starts, and
        what truncated BPTT carries across windows."""
        return self.rnn.init_state(batch)

    def step(
        self, state: tuple, x: Float[Array, "B F"], *, reset: Bool[Array, " B"] | None = None
    ) -> tuple[Float[Array, "B out"], tuple]:
        """One step, for acting in an environment or predicting a stream: the logits
        (B, out) after this step and the new state. ``ManyToMany`` gives the logits its
        sequence call gives at this step; ``ManyToOne`` those it gives for the sequence
        so far. ``reset`` (B,): where True, the sequence restarts from the zero state
        before this step (an episode's first step). Inference (no dropout); start from
        ``init_state(B)``; compile it with ``eqx.filter_jit(model.step)``.
        """
        y, state = self.rnn.step(state, x, reset=reset)
        return self.head(y), state

    def train_logits(self, xs, targets, lengths, key, segments=None) -> Array:
        """Training protocol: the logits the loss reads (dropout on when ``key`` is given)."""
        return self(xs, lengths=lengths, segments=segments, key=key, inference=key is None)

    def infer(
        self,
        xs: Float[Array, "B T F"],
        *,
        lengths: Int[Array, " B"] | None = None,
        segments: Int[Array, "B T"] | None = None,
    ) -> Array:
        """Prediction protocol: the logits in inference mode (no dropout)."""
        return self(xs, lengths=lengths, segments=segments, inference=True)


class ManyToOne(_AbstractHeadOnRNN):
    """Sequence in, one output: ``head`` on the final ``h`` (at each sequence's last valid step).

    Example: sentiment of a sentence, the adding problem. Returns logits (B, out).

    Args:
        rnn: the recurrent network (``make_rnn``), (B, T, F) -> (B, T, H).
        head: the readout of the last layer's final ``h`` (H -> out).
        expects_lengths: set by ``fit`` when the model is trained with lengths, so that
            ``evaluate`` and ``predict`` warn if they are not given (kept in the saved file).
    """

    rnn: Stacked
    head: Head
    expects_lengths: bool = eqx.field(static=True, default=False)

    def read(self, ys: Float[Array, "B T H"], state: tuple, segments: Int[Array, "B T"] | None = None) -> Array:
        """``head`` on the last layer's final state (B, out); for packed rows on each
        segment's, segment s at position s (B, T, out)."""
        if segments is not None:
            return self.head(self.rnn.segment_outputs(ys, segments))
        return self.head(self.rnn.last_output(state))


class ManyToMany(_AbstractHeadOnRNN):
    """One output per input step: ``head`` on every ``h_t``.

    Example: tagging, next-token prediction. Returns logits (B, T, out); skipped steps
    (past a sequence's length) see ``h = 0`` and give ``b_y`` (mask them in the loss).

    Args:
        rnn: the recurrent network (``make_rnn``), (B, T, F) -> (B, T, H).
        head: the readout of every step's ``h`` (H -> out).
        expects_lengths: as in ``ManyToOne``.
    """

    rnn: Stacked
    head: Head
    expects_lengths: bool = eqx.field(static=True, default=False)

    def run(
        self,
        xs: Float[Array, "B T F"],
        state: tuple | None = None,
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        **options: Unpack[SequenceOptions],
    ) -> tuple[Float[Array, "B T out"], tuple]:
        """Logits for every step and the final states: a rollout of several episodes is
        one call with ``resets`` at the episodes' first steps and ``state`` the one
        carried from the previous rollout.

        Args:
            xs: the inputs (B, T, F).
            state: one state per layer (``init_state(B)``); None: zeros.
            key: the dropout key (training with dropout).
            inference: True turns dropout off.
            **options: ``lengths``, ``mask``, ``resets``, ``initial`` (``SequenceOptions``),
                as ``jaxrnn.layers.Stacked`` takes them.

        Returns:
            ``(logits, states)``: logits (B, T, out) and the per-layer final states.
        """
        ys, state = self.rnn(xs, state, key=key, inference=inference, **options)
        return self.head(ys), state

    def read(self, ys: Float[Array, "B T H"], state: tuple, segments: Int[Array, "B T"] | None = None) -> Array:
        """``head`` on every step's output."""
        return self.head(ys)
