"""What one update differentiates: the loss of a model's logits at the positions that count.

``Loss`` is the user's setting (which loss, on which steps, reduced how, the metrics
beside it), shared by ``fit``, its validation and ``evaluate``; ``Objective`` is what the
update and the evaluator compute from it for one kind of data.
"""

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxrnn.layers.segments import segment_bounds, segment_flags
from jaxrnn.train.losses import LossFn, reduce, resolve_loss, takes_class_ids
from jaxrnn.train.metrics import Metric, resolve_metrics

Sums = dict[str, tuple[Array, Array]]
"""``{name: (total, count)}``: sums over positions that add up across batches."""


@dataclasses.dataclass(frozen=True)
class Loss:
    """What ``fit`` minimises and ``evaluate`` reports: one object for both.

    ``fit(..., loss="cross_entropy")`` is ``Loss("cross_entropy")``; pass a ``Loss`` for
    anything else, and the same one to ``evaluate``. Checked when built: a wrong value is
    a ValueError naming the field, before any work.

    Args:
        fn: "mse", "cross_entropy" (targets are class ids), "binary_cross_entropy", or
            ``fn(logits, targets) -> per-position loss`` (logits (..., out)); always on
            logits, never on probabilities.
        on: "all" steps, or each sequence's "last" valid step (a model with one output
            per step, (B, T, out)); steps past ``lengths`` never count.
        reduction: "mean" over every valid (sequence, step), or "sum" over steps, then the
            mean over sequences (the notes' L = sum_t L_t).
        metrics: names from "accuracy", "perplexity", "bits_per_char", reported beside the
            loss (each ``val_<name>`` in validation); None: accuracy for cross-entropy,
            nothing otherwise.
    """

    fn: str | LossFn = "mse"
    on: str = "all"
    reduction: str = "mean"
    metrics: Sequence[str] | None = None

    def __post_init__(self):
        if self.on not in ("all", "last"):
            raise ValueError(f"Loss: on must be 'all' or 'last', got {self.on!r}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"Loss: reduction must be 'mean' or 'sum', got {self.reduction!r}")
        resolve_metrics(self.metrics, takes_class_ids(resolve_loss(self.fn)))
        if self.metrics is not None:
            object.__setattr__(self, "metrics", tuple(self.metrics))


def objective_of(loss, packed: str | None = None) -> "Objective":
    """What an update and the evaluator compute for ``loss`` (a ``Loss``, or a loss name or
    function for ``Loss(loss)``); ``packed``: the kind of packed rows' targets
    (``jaxrnn.data.arrays.packed_kind``), None for padded data."""
    loss = loss if isinstance(loss, Loss) else Loss(loss)
    if packed == "sequences" and loss.on == "last":
        raise ValueError("Loss: on='last' needs targets per step; these packed rows hold one per sequence")
    fn = resolve_loss(loss.fn)
    class_ids = takes_class_ids(fn)
    metrics = resolve_metrics(loss.metrics, class_ids)
    return Objective(fn, loss.reduction, loss.on == "last", class_ids, metrics, packed)


class Objective(NamedTuple):
    """The loss function, its reduction, which positions count, and the metrics beside it.

    ``class_ids``: the loss reads targets as class ids (one per position). ``packed``:
    for packed rows (``segments``), whether the targets are per step ("steps") or one per
    segment, at position s of its row ("sequences"); None: padded data.
    """

    loss: LossFn
    reduction: str
    last_step_only: bool
    class_ids: bool
    metrics: tuple[Metric, ...] = ()
    packed: str | None = None

    def valid(self, lengths: Array | None, segments: Array | None, T: int) -> Bool[Array, "B T"] | None:
        """The positions of a batch's targets that count: the steps before each length;
        for packed rows the steps in a segment, or (targets per sequence) the first as
        many positions as the row has segments."""
        if segments is None:
            return lengths_mask(lengths, T)
        if self.packed == "sequences":
            return segment_bounds(segments)[2]
        return segments >= 0

    def positions(
        self,
        logits: Array,
        targets: Array,
        weights: Float[Array, " B"],
        valid: Bool[Array, "B T"] | None,
        segments: Array | None = None,
    ) -> tuple[Array, Array, Array]:
        """Logits, targets and weights at the positions that count.

        One output per sequence: weights are the examples'. One per step: ``valid`` masks
        skipped steps (when the output has the inputs' length); with ``last_step_only``
        only each sequence's last valid step counts (each segment's, in packed rows).
        """
        per_step = logits.ndim == 3 if self.class_ids else logits.ndim == 3 and targets.ndim == 3
        if not per_step:
            if self.last_step_only:
                raise ValueError(
                    f"Loss(on='last') needs one output per step (B, T, out); the model gives {tuple(logits.shape)}, "
                    "one per sequence, which is already its last step: leave on='all'"
                )
            return logits, targets, weights
        w = jnp.broadcast_to(weights[:, None], logits.shape[:2])
        if valid is not None and valid.shape == w.shape:
            w = w * valid
        if self.last_step_only and segments is not None:
            ends = segments != jnp.concatenate([segments[:, 1:], jnp.full_like(segments[:, :1], -1)], axis=1)
            return logits, targets, w * (ends & (segments >= 0))
        if self.last_step_only:
            T = logits.shape[1]
            last = T - 1 - jnp.argmax(w[:, ::-1] > 0, axis=1)  # last position with weight
            pick = lambda a: jnp.take_along_axis(a, last.reshape(-1, *[1] * (a.ndim - 1)), axis=1)[:, 0]  # noqa: E731
            return pick(logits), pick(targets), weights * (w.max(1) > 0)
        return logits, targets, w

    def __call__(self, logits, targets, weights, valid=None, segments=None) -> tuple[Array, Sums]:
        """The loss and the sums behind it and the metrics.

        Positions of weight 0 (padding, steps past a sequence's length) contribute exactly
        nothing: their targets are replaced by a harmless value before the loss is taken,
        so a -100 or NaN written there cannot leak into the loss or its gradient.
        ``segments``: packed rows' ids; with reduction 'sum' each segment counts as one
        sequence, so that the loss is the padded data's.
        """
        logits, targets, w = self.positions(logits, targets, weights, valid, segments)
        jax.eval_shape(self.loss, logits, targets)  # the loss's own shape errors first (no compute)
        counts = w > 0
        target_mask = (
            counts
            if targets.ndim == counts.ndim
            else counts.reshape(*counts.shape, *[1] * (targets.ndim - counts.ndim))
        )
        targets = jnp.where(target_mask, targets, jnp.zeros((), targets.dtype))
        values = jnp.where(counts, self.loss(logits, targets), 0.0)
        total, count = reduce(values, w, self.reduction)
        if segments is not None and self.packed == "sequences":
            count = jnp.sum(w)  # one position per sequence, as in padded data
        elif segments is not None and self.reduction == "sum" and not self.last_step_only:
            count = jnp.sum(w * segment_flags(segments)[1])  # a sequence per segment, not per row
        elif segments is not None and self.reduction == "sum":
            count = jnp.sum(w)  # one position (its last step) per sequence
        sums = {"loss": (total, count)}
        for metric in self.metrics:
            sums[metric.name] = reduce(jnp.where(counts, metric.per_position(logits, targets), 0.0), w, "mean")
        return total / jnp.maximum(count, 1e-12), sums


def lengths_mask(lengths: Array | None, T: int) -> Bool[Array, "B T"] | None:
    """``t < lengths[b]`` as a (B, T) mask, or None without lengths."""
    return None if lengths is None else jnp.arange(T)[None, :] < lengths[:, None]
