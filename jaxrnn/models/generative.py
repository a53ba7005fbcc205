"""One-to-many and encoder-decoder models (notes 003, section 3 b and e)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxrnn.cells.base import State
from jaxrnn.layers.recurrent import Recurrent
from jaxrnn.layers.stacked import Stacked
from jaxrnn.models.decoder import Decoder


def state_with_h(cell, h: Float[Array, "B H"]) -> State:
    """The cell's zero state with its output part ``h`` replaced (for the LSTM, c stays 0).

    Args:
        cell: the cell.
        h: the output part (B, H).

    Returns:
        The cell's state (B, H), or the LSTM's pair (h, 0).
    """
    state = cell.init_state(h.shape[:-1])
    return eqx.tree_at(cell.output, state, h) if isinstance(state, tuple) else h


class OneToMany(eqx.Module):
    """One input vector ``u`` (B, U) in, a sequence out, e.g. captioning or generating a series.

    ``condition='state'``: ``h_0 = tanh(W_u u + b_u)`` (LSTM: ``c_0 = 0``) and the decoder
    reads only its previous output; ``condition='input'``: ``h_0 = 0`` and ``u`` is
    concatenated to the decoder's input at every step (then
    ``decoder.context_size`` must be U).

    Args:
        decoder: the ``Decoder`` that generates the sequence.
        input_size: U, the width of ``u``.
        condition: "state" or "input", as above.
        key: initialises ``W_u`` (``condition='state'``).
    """

    decoder: Decoder
    W_u: eqx.nn.Linear | None
    condition: str = eqx.field(static=True)

    def __init__(self, decoder: Decoder, input_size: int, *, condition: str = "state", key: PRNGKeyArray):
        if condition not in ("state", "input"):
            raise ValueError(f"condition must be 'state' or 'input', got {condition!r}")
        if condition == "input" and decoder.context_size != input_size:
            raise ValueError(f"condition='input' needs decoder.context_size == input_size ({input_size})")
        self.decoder, self.condition = decoder, condition
        self.W_u = eqx.nn.Linear(input_size, decoder.cell.hidden_size, key=key) if condition == "state" else None

    def _start(self, u: Float[Array, "B U"]) -> tuple[State, Array | None]:
        size = self.decoder.context_size if self.W_u is None else self.W_u.in_features
        if u.ndim != 2 or u.shape[1] != size:
            raise ValueError(f"u must have shape (batch, {size}) (batch, input_size), got {tuple(u.shape)}")
        cell = self.decoder.cell
        if self.W_u is None:
            return cell.init_state((u.shape[0],)), u
        return state_with_h(cell, jnp.tanh(u @ self.W_u.weight.T + self.W_u.bias)), None

    def __call__(self, u: Float[Array, "B U"], targets: Array) -> Float[Array, "B T out"]:
        """Teacher-forced logits: step t reads the target of step t - 1.

        Args:
            u: the input vector (B, U).
            targets: (B, T) token ids or (B, T, out) values.

        Returns:
            (B, T, out) logits.
        """
        state, context = self._start(u)
        return self.decoder.teacher_forced(state, targets, context)

    def train_logits(self, u, targets, lengths, key) -> Float[Array, "B T out"]:
        """Training protocol: teacher-forced logits (``lengths`` and ``key`` are unused)."""
        return self(u, targets)

    def infer(self, u: Float[Array, "B U"], *, lengths=None, steps: int, **kwargs) -> Array:
        """Prediction protocol: the generated sequence (``generate``'s predictions)."""
        return self.generate(u, steps, **kwargs)[0]

    def generate(self, u: Float[Array, "B U"], steps: int, **kwargs) -> tuple[Array, Array]:
        """Feed back own outputs for ``steps`` steps (see ``Decoder.generate``)."""
        state, context = self._start(u)
        return self.decoder.generate(state, steps, context, **kwargs)


class EncoderDecoder(eqx.Module):
    """Sequence to sequence of another length: the encoder's final state is the context.

    The decoder starts from the encoder's last-layer final state, so that layer must be
    a (unidirectional) ``Recurrent`` whose cell has the decoder cell's type and size.

    Args:
        encoder: the encoding ``Stacked`` layers (``make_rnn``).
        decoder: the ``Decoder`` that starts from their final state.
    """

    encoder: Stacked
    decoder: Decoder

    def __post_init__(self):
        last = self.encoder.layers[-1]
        dec = self.decoder.cell
        if (
            not isinstance(last, Recurrent)
            or type(last.cell) is not type(dec)
            or last.cell.hidden_size != dec.hidden_size
        ):
            raise ValueError(
                "the encoder's last layer must be a unidirectional Recurrent with the decoder's cell type "
                f"and hidden size ({type(dec).__name__}, {dec.hidden_size})"
            )

    def encode(self, xs: Float[Array, "B T F"], *, lengths: Int[Array, " B"] | None = None) -> State:
        """The context: the encoder's last-layer state after each sequence's last valid step."""
        _, states = self.encoder(xs, lengths=lengths, inference=True)
        return states[-1]

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        targets: Array,
        *,
        lengths: Int[Array, " B"] | None = None,
    ) -> Float[Array, "B T_out out"]:
        """Teacher-forced logits: decoder step t reads the target of step t - 1.

        Args:
            xs: the input sequences (B, T, F).
            targets: (B, T_out) token ids or (B, T_out, out) values.
            lengths: (B,) valid steps of each input sequence (None: all T).

        Returns:
            (B, T_out, out) logits.
        """
        return self.decoder.teacher_forced(self.encode(xs, lengths=lengths), targets)

    def train_logits(self, xs, targets, lengths, key) -> Float[Array, "B T_out out"]:
        """Training protocol: teacher-forced logits (``key`` is unused)."""
        return self(xs, targets, lengths=lengths)

    def infer(self, xs: Float[Array, "B T F"], *, lengths: Int[Array, " B"] | None = None, steps: int, **kwargs):
        """Prediction protocol: the decoded sequence (``generate``'s predictions)."""
        return self.generate(xs, steps, lengths=lengths, **kwargs)[0]

    def generate(
        self, xs: Float[Array, "B T F"], steps: int, *, lengths: Int[Array, " B"] | None = None, **kwargs
    ) -> tuple[Array, Array]:
        """Decode up to ``steps`` outputs (greedy by default; see ``Decoder.generate``)."""
        return self.decoder.generate(self.encode(xs, lengths=lengths), steps, **kwargs)
