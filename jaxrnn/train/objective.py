"""What one update differentiates: a model's logits on a batch (or a TBPTT window) and its loss."""

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from jaxrnn.models import EncoderDecoder, ManyToMany, ManyToOne, OneToMany
from jaxrnn.train.losses import LossFn, accuracy, reduce

Forward = Callable[..., Array]
"""``forward(model, inputs, targets, lengths, key) -> logits`` for models of your own."""


def default_forward(model, inputs: Array, targets: Array, lengths: Array | None, key: PRNGKeyArray) -> Array:
    """Training logits of jaxrnn's architectures (decoders are teacher-forced on the targets)."""
    if isinstance(model, ManyToOne | ManyToMany):
        return model(inputs, lengths=lengths, key=key)
    if isinstance(model, EncoderDecoder):
        return model(inputs, targets, lengths=lengths)
    if isinstance(model, OneToMany):
        return model(inputs, targets)
    raise TypeError(
        f"fit does not know how to run a {type(model).__name__}: pass forward=(model, inputs, targets, lengths, key)"
    )


class Objective(NamedTuple):
    """The loss function, how positions are weighted, and whether to report accuracy."""

    loss: LossFn
    reduction: str
    last_step_only: bool
    classification: bool

    def positions(
        self, logits: Array, targets: Array, weights: Float[Array, " B"], valid: Bool[Array, "B T"] | None
    ) -> tuple[Array, Array, Array]:
        """Logits, targets and weights at the positions that count.

        One output per sequence: weights are the examples'. One per step: ``valid`` masks
        skipped steps (when the output has the inputs' length); with ``last_step_only``
        only each sequence's last valid step counts.
        """
        per_step = logits.ndim == 3 if self.classification else logits.ndim == 3 and targets.ndim == 3
        if not per_step:
            return logits, targets, weights
        w = jnp.broadcast_to(weights[:, None], logits.shape[:2])
        if valid is not None and valid.shape == w.shape:
            w = w * valid
        if self.last_step_only:
            T = logits.shape[1]
            last = T - 1 - jnp.argmax(w[:, ::-1] > 0, axis=1)  # last position with weight
            pick = lambda a: jnp.take_along_axis(a, last.reshape(-1, *[1] * (a.ndim - 1)), axis=1)[:, 0]  # noqa: E731
            return pick(logits), pick(targets), weights * (w.max(1) > 0)
        return logits, targets, w

    def __call__(self, logits, targets, weights, valid=None) -> tuple[Array, dict[str, Array]]:
        """The loss and the sums behind the metrics: ``{name: (total, count)}``."""
        logits, targets, w = self.positions(logits, targets, weights, valid)
        total, count = reduce(self.loss(logits, targets), w, self.reduction)
        sums = {"loss": (total, count)}
        if self.classification:
            sums["accuracy"] = reduce(accuracy(logits, targets), w, "mean")
        return total / jnp.maximum(count, 1e-12), sums


def lengths_mask(lengths: Array | None, T: int, B: int) -> Bool[Array, "B T"] | None:
    """``t < lengths[b]`` as a (B, T) mask, or None without lengths."""
    return None if lengths is None else jnp.arange(T)[None, :] < lengths[:, None]
