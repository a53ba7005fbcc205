"""How ``train`` knows a model: a small protocol, so that it imports no model class.

jaxrnn's models implement it; a model of your own can implement it too, or be trained
with ``fit(..., forward=...)``.
"""

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from jaxtyping import Array, Bool, PRNGKeyArray


@runtime_checkable
class Trainable(Protocol):
    """``train_logits(inputs, targets, lengths, key)``: the logits the loss reads.

    ``key`` drives dropout; ``key=None`` means inference (evaluation). Decoders are
    teacher-forced on ``targets``. On packed rows (``jaxrnn.datasets.pack``) it is also
    given ``segments=`` (B, T), which ``ManyToOne`` and ``ManyToMany`` take.
    """

    def train_logits(self, inputs: Array, targets: Array, lengths: Array | None, key: PRNGKeyArray | None) -> Array: ...


@runtime_checkable
class Stateful(Protocol):
    """What truncated BPTT needs: the state carried across windows.

    ``init_state(batch)`` is the zero state; ``run(xs, state, mask=, key=)`` returns the
    logits of every step and the state after the window (on packed rows it is also given
    ``resets=``, the steps where a segment starts).
    """

    def init_state(self, batch: int) -> Any: ...

    def run(
        self, xs: Array, state: Any, *, mask: Bool[Array, "B T"], key: PRNGKeyArray | None
    ) -> tuple[Array, Any]: ...


@runtime_checkable
class Predictor(Protocol):
    """``infer(inputs, lengths=..., **options)``: predictions in inference mode (what ``predict`` returns)."""

    def infer(self, inputs: Array, *, lengths: Array | None = None, **options) -> Array: ...


Forward = Callable[..., Array]
"""``forward(model, inputs, targets, lengths, key) -> logits`` for models of your own
(on packed rows also given ``segments=``)."""


def training_forward(model, forward: Forward | None) -> Forward:
    """``forward`` if given, else the model's ``train_logits``; TypeError if it has neither."""
    if forward is not None:
        if not callable(forward):
            raise TypeError(
                f"forward must be a callable (model, inputs, targets, lengths, key) -> logits, got {forward!r}"
            )
        return forward
    if not isinstance(model, Trainable):
        raise TypeError(
            f"model: a {type(model).__name__} has no train_logits method: pass "
            "forward=(model, inputs, targets, lengths, key) -> logits"
        )
    return _train_logits


def _train_logits(model, inputs, targets, lengths, key, **packed):
    return model.train_logits(inputs, targets, lengths, key, **packed)
