"""Losses on logits, masked by valid steps and weighted by example.

Every loss here returns ``(per-position losses, positions' weights)``; ``reduce``
combines them. Positions are (b,) for one output per sequence or (b, t) for one per step.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from jaxrnn._checks import resolve_named

LossFn = Callable[[Array, Array], Array]


def mse(logits: Float[Array, "*pos out"], targets: Float[Array, "*pos out"]) -> Float[Array, "*pos"]:
    """Squared error averaged over the output features: ``mean_j (y_j - t_j)^2``.

    Args:
        logits: the model's outputs (..., out): any leading positions (batch, steps).
        targets: values of the same shape.

    Returns:
        (...): the loss at each position.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"mse: targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    return jnp.mean((logits - targets) ** 2, axis=-1)


def cross_entropy(logits: Float[Array, "*pos classes"], targets: Array) -> Float[Array, "*pos"]:
    """``-log softmax(logits)[target]`` with a stable log-softmax.

    Args:
        logits: unnormalised class scores (..., classes).
        targets: class ids (...), integers in [0, classes).

    Returns:
        (...): the loss at each position.
    """
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets must be class ids of shape {tuple(logits.shape[:-1])}, got {tuple(targets.shape)}"
        )
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]


def binary_cross_entropy(logits: Float[Array, "*pos out"], targets: Float[Array, "*pos out"]) -> Float[Array, "*pos"]:
    """Sigmoid cross-entropy on logits (stable), averaged over the output features.

    Args:
        logits: one logit per output (..., out).
        targets: probabilities in [0, 1] of the same shape.

    Returns:
        (...): the loss at each position.
    """
    if logits.shape != targets.shape:
        raise ValueError(
            f"binary_cross_entropy: targets must have the logits' shape {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets.astype(logits.dtype)), axis=-1)


LOSSES: dict[str, LossFn] = {"mse": mse, "cross_entropy": cross_entropy, "binary_cross_entropy": binary_cross_entropy}


def resolve_loss(loss: str | LossFn) -> LossFn:
    """A loss name ('mse', 'cross_entropy', 'binary_cross_entropy') or a callable
    ``(logits, targets) -> per-position``."""
    return resolve_named(loss, LOSSES, "loss")


def takes_class_ids(loss: LossFn) -> bool:
    """Whether the loss reads targets as class ids (one per position) rather than arrays like the logits."""
    return loss is cross_entropy


def reduce(
    values: Float[Array, "*pos"], weights: Float[Array, "*pos"], reduction: str
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Combine per-position values into ``(total, count)``; the loss is ``total / count``.

    'mean': the weighted mean over all valid positions (every valid step of every
    sequence counts once). 'sum': summed over time steps, then averaged over the
    sequences (the notes' L = sum_t L_t, per sequence). Totals and counts of several
    batches add up, so validation over batches is exact.
    """
    total = jnp.sum(values * weights)
    if reduction == "mean" or values.ndim == 1:
        return total, jnp.sum(weights)
    return total, jnp.sum(jnp.max(weights, axis=tuple(range(1, weights.ndim))))
