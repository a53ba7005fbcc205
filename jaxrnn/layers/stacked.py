"""A stack of recurrent layers, with dropout between them, and the builder ``make_rnn``."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from jaxrnn._checks import check_count
from jaxrnn.cells.base import Cell
from jaxrnn.layers.bidirectional import Bidirectional
from jaxrnn.layers.engine import Engine
from jaxrnn.layers.recurrent import Recurrent
from jaxrnn.layers.segments import segment_bounds

Layer = Recurrent | Bidirectional


class Stacked(eqx.Module):
    """Layers applied in turn, each reading the previous one's outputs.

    ``dropout`` is applied to the outputs of every layer but the last (as in PyTorch),
    in training only: pass ``key`` when ``dropout > 0`` and ``inference=False``.
    The state is a tuple with one entry per layer. ``make_rnn`` builds one.

    Args:
        layers: ``Recurrent`` or ``Bidirectional`` layers, each one's input size the
            previous one's output size.
        dropout: the probability of dropping each output of every layer but the last.
    """

    layers: tuple[Layer, ...]
    dropout: float = eqx.field(static=True, default=0.0)

    def __init__(self, layers: Sequence[Layer], dropout: float = 0.0):
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers must hold at least one layer")
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.output_size != b.input_size:
                raise ValueError(f"layers[{i + 1}] takes {b.input_size} features but layers[{i}] emits {a.output_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.layers, self.dropout = layers, float(dropout)

    @property
    def input_size(self) -> int:
        """Features per input step."""
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        """Features per output step of the last layer."""
        return self.layers[-1].output_size

    def init_state(self, batch: int) -> tuple:
        """Zero states, one per layer."""
        return tuple(layer.init_state(batch) for layer in self.layers)

    def last_output(self, state: tuple) -> Float[Array, "B out"]:
        """The last layer's final ``h`` (both directions merged if bidirectional)."""
        return self.layers[-1].last_output(state[-1])

    def segment_outputs(self, ys: Float[Array, "B T out"], segments: Int[Array, "B T"]) -> Float[Array, "B T out"]:
        """For packed rows: each segment's final output (what ``last_output`` gives for its
        sequence run alone) at position s of its row for segment s, zeros past the row's
        segments. ``ys`` the outputs of a call with the segments' resets.

        A bidirectional last layer reads its forward half at a segment's last step and its
        backward half at its first; with ``merge='sum'`` the halves are gone: ValueError.
        """
        first, last, present = segment_bounds(segments)
        take = lambda a, at: jnp.take_along_axis(a, at[..., None], axis=1)  # noqa: E731
        layer = self.layers[-1]
        if isinstance(layer, Bidirectional):
            if layer.merge != "concat":
                raise ValueError("a many-to-one model on packed rows needs merge='concat' in its last layer")
            H = layer.forward.output_size
            out = jnp.concatenate([take(ys[..., :H], last), take(ys[..., H:], first)], axis=-1)
        else:
            out = take(ys, first if layer.reverse else last)
        return jnp.where(present[..., None], out, jnp.zeros((), out.dtype))

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        state: tuple | None = None,
        *,
        lengths: Int[Array, " B"] | None = None,
        mask: Bool[Array, "B T"] | None = None,
        resets: Bool[Array, "B T"] | None = None,
        initial: tuple | None = None,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> tuple[Float[Array, "B T out"], tuple]:
        """The last layer's outputs and the tuple of final states.

        Args:
            xs: the inputs (B, T, F).
            state: one state per layer (``init_state(B)``'s structure); None: zeros.
            lengths, mask: skipped steps, as in ``Recurrent``.
            resets: (B, T) bool, where a segment starts: every layer restarts there (see
                ``Recurrent``), so a segment's outputs are those it gives run alone.
            initial: one state per layer, what a reset returns to; None: zeros.
            key: the dropout key (training with ``dropout > 0``).
            inference: True turns dropout off.

        Returns:
            ``(outputs, states)``: the last layer's outputs (B, T, out) and the per-layer
                final states.

        Dropout draws an independent mask per element and step, so segments packed in
        one row draw theirs independently, as they would run alone.
        """
        for name, given in (("state", state), ("initial", initial)):
            if given is not None and (not isinstance(given, tuple) or len(given) != len(self.layers)):
                raise ValueError(f"{name} must be a tuple of {len(self.layers)} per-layer states")
        use_dropout = self.dropout > 0 and not inference and len(self.layers) > 1
        if use_dropout and key is None:
            raise ValueError("key is required: dropout > 0 in training (or pass inference=True)")
        keys = jax.random.split(key, len(self.layers)) if use_dropout else [None] * len(self.layers)
        finals = []
        for i, layer in enumerate(self.layers):
            xs, s = layer(
                xs, None if state is None else state[i], lengths=lengths, mask=mask,
                resets=resets, initial=None if initial is None else initial[i],
            )  # fmt: skip
            finals.append(s)
            if use_dropout and i < len(self.layers) - 1:
                xs = eqx.nn.Dropout(self.dropout)(xs, key=keys[i])
        return xs, tuple(finals)

    def step(
        self, state: tuple, x: Float[Array, "B F"], *, reset: Bool[Array, " B"] | None = None
    ) -> tuple[Float[Array, "B out"], tuple]:
        """One step through every layer, as the sequence call in inference computes it
        (no dropout): ``(y, states)``, the last layer's output (B, out) and the per-layer
        states. ``reset`` (B,): where True, every layer restarts from its zero state
        before this step. Bidirectional layers cannot step: ValueError.

        Start from ``init_state(B)``.
        """
        if not isinstance(state, tuple) or len(state) != len(self.layers):
            raise ValueError(f"state must be a tuple of {len(self.layers)} per-layer states")
        finals = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Bidirectional):
                raise ValueError(f"layers[{i}] is bidirectional: its backward direction needs the whole sequence")
            x, s = layer.step(state[i], x, reset=reset)
            finals.append(s)
        return x, tuple(finals)


def make_rnn(
    cell_type: type[Cell],
    input_size: int,
    hidden_size: int,
    *,
    key: PRNGKeyArray,
    num_layers: int = 1,
    bidirectional: bool = False,
    merge: str = "concat",
    dropout: float = 0.0,
    unroll: int = 1,
    remat: bool = False,
    engine: Engine | None = None,
    **cell_kwargs,
) -> Stacked:
    """Build a ``Stacked`` of ``num_layers`` layers of ``cell_type`` (like ``torch.nn.LSTM``).

    Args:
        cell_type: ``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` or ``ResetBeforeGRUCell``.
        input_size: F, the features of each input step.
        hidden_size: H of every layer.
        key: the weights' PRNG key (one per layer and direction is split from it).
        num_layers: layers stacked, each reading the previous one's outputs.
        bidirectional: each layer a ``Bidirectional`` pair.
        merge: how a bidirectional layer joins its directions: "concat" (2H, PyTorch's
            layout) or "sum" (H).
        dropout: on the outputs of every layer but the last, in training.
        unroll: steps per iteration of each layer's scan.
        remat: every layer recomputes its steps in the backward pass (lowest memory).
        engine: the fast paths every layer may take (None: all).
        **cell_kwargs: for every cell (e.g. ``layer_norm=True``, ``activation='relu'``).

    Returns:
        The ``Stacked`` network: called on (B, T, F) it gives (B, T, H) outputs (2H for
            bidirectional "concat") and one final state per layer.
    """
    num_layers = check_count(num_layers, "num_layers")
    if not (isinstance(cell_type, type) and issubclass(cell_type, Cell)):
        raise TypeError(f"cell_type must be a cell class such as jaxrnn.LSTMCell, got {cell_type!r}")
    keys = iter(jax.random.split(key, 2 * num_layers))
    layers, size = [], input_size

    def layer(reverse: bool) -> Recurrent:
        cell = cell_type(size, hidden_size, key=next(keys), **cell_kwargs)
        return Recurrent(cell, reverse=reverse, unroll=unroll, remat=remat, engine=engine or Engine())

    for _ in range(num_layers):
        layers.append(Bidirectional(layer(False), layer(True), merge) if bidirectional else layer(False))
        size = layers[-1].output_size
    return Stacked(layers, dropout)
