"""Metrics reported beside the loss: per-position values averaged over valid positions, then finished.

A metric is ``per_position(logits, targets)`` (averaged like the loss with reduction
'mean', over every valid position of every example, so batch sums add up exactly) and
``finish(mean)``, applied once the mean over a whole epoch or data set is known:
perplexity is ``exp`` of the mean cross-entropy, not the mean of per-batch perplexities.
"""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxrnn.train.losses import cross_entropy


class Metric(NamedTuple):
    """A named metric: ``per_position(logits, targets) -> values`` and ``finish(mean) -> value``."""

    name: str
    per_position: Callable[[Array, Array], Array]
    finish: Callable[[float], float]


def accuracy(logits: Float[Array, "*pos out"], targets: Array) -> Float[Array, "*pos"]:
    """1.0 where the prediction is right, else 0.0.

    Class-id targets (one per position): the argmax of the logits must be the target.
    Targets shaped like the logits (sigmoid heads, binary targets in {0, 1}): every
    output's ``logit > 0`` must match ``target > 0.5``.

    Args:
        logits: the model's outputs (..., out).
        targets: class ids (...), or values shaped like the logits.

    Returns:
        (...): 1.0 or 0.0 at each position.
    """
    if targets.shape == logits.shape:
        return jnp.all((logits > 0) == (targets > 0.5), axis=-1).astype(logits.dtype)
    return (jnp.argmax(logits, -1) == targets).astype(logits.dtype)


def _identity(x: float) -> float:
    return x


def _exp(x: float) -> float:
    return math.exp(x) if x < 709 else math.inf


def _bits(x: float) -> float:
    return x / math.log(2)


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", accuracy, _identity),
    "perplexity": Metric("perplexity", cross_entropy, _exp),
    "bits_per_char": Metric("bits_per_char", cross_entropy, _bits),
}
CLASS_ID_METRICS = ("perplexity", "bits_per_char")


def resolve_metrics(metrics: Sequence[str] | None, class_ids: bool) -> tuple[Metric, ...]:
    """Metric names -> ``Metric`` records; None gives accuracy for class-id losses, nothing otherwise.

    Perplexity and bits per character read class ids: ValueError for a loss on values.
    """
    if metrics is None:
        return (METRICS["accuracy"],) if class_ids else ()
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise TypeError(f"metrics must be a list of names from {sorted(METRICS)}, got {metrics!r}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics must be names from {sorted(METRICS)}, got unknown {unknown}")
    needs_ids = [m for m in metrics if m in CLASS_ID_METRICS]
    if needs_ids and not class_ids:
        raise ValueError(f"metrics {needs_ids} need loss='cross_entropy' (class-id targets)")
    return tuple(METRICS[m] for m in dict.fromkeys(metrics))


def finish(sums: dict[str, tuple[float, float]], metrics: Sequence[Metric]) -> dict[str, float]:
    """``{'loss': ..., metric: ...}``: each ``total / count``, finished; NaN where nothing counted
    (an epoch whose every update was skipped)."""
    out = {}
    for name, fin in [("loss", _identity)] + [(m.name, m.finish) for m in metrics]:
        total, count = sums.get(name, (0.0, 0.0))
        out[name] = fin(total / count) if count > 0 else math.nan
    return out
