"""Pascanu, Mikolov and Bengio (2013): the vanishing-gradient condition, and eigenvalues."""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from jaxrnn.cells.base import ACTIVATIONS
from jaxrnn.cells.simple import SimpleRNNCell

_GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25}


def _check_square(W, name: str) -> None:
    if getattr(W, "ndim", None) != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(getattr(W, 'shape', ()))}")


def activation_bound(activation: Callable[[Array], Array]) -> float:
    """gamma = sup |f'|: 1 for tanh and relu, 1/4 for sigmoid; other callables: max |f'| on [-10, 10].

    Args:
        activation: the elementwise activation f.

    Returns:
        gamma.
    """
    for name, f in ACTIVATIONS.items():
        if f is activation:
            return _GAMMA[name]
    z = jnp.linspace(-10.0, 10.0, 20001)
    return float(jnp.max(jnp.abs(jax.vmap(jax.grad(activation))(z))))


class PascanuBound(NamedTuple):
    """sigma_max(W_hh), gamma, their product, and which regime the 2013 conditions give.

    ``vanishing``: gamma * sigma_max < 1, sufficient for gradients to vanish,
    ||prod J|| <= (gamma sigma_max)^k. ``may_explode``: sigma_max > 1/gamma, necessary
    for exploding gradients.
    """

    sigma_max: Array
    gamma: float
    product: Array
    vanishing: Array
    may_explode: Array


def pascanu_bound(W_hh: Array, activation: Callable[[Array], Array] | str = "tanh") -> PascanuBound:
    """The Pascanu et al. (2013) quantities for ``h_t = f(W_hh h_{t-1} + ...)``.

    Args:
        W_hh: the recurrent weights (H, H), or a ``SimpleRNNCell`` (its ``W_hh`` and
            activation).
        activation: f: "tanh", "relu", "sigmoid" or a callable (``activation_bound``).

    Returns:
        A ``PascanuBound``: sigma_max(W_hh), gamma, their product, and the regime.
    """
    if isinstance(W_hh, SimpleRNNCell):
        W_hh, activation = W_hh.W_hh, W_hh.activation
    elif isinstance(W_hh, eqx.Module):
        raise TypeError(
            f"pascanu_bound applies to the simple RNN h_t = f(W_hh h_t-1 + ...), whose step Jacobian is "
            f"diag(f') W_hh; a {type(W_hh).__name__}'s is not (its gates multiply the state): measure "
            "it with spectra.step_jacobians and spectra.log_singular_values_vs_lag"
        )
    _check_square(W_hh, "W_hh")
    f = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    sigma = jnp.linalg.norm(W_hh, 2)
    gamma = activation_bound(f)
    return PascanuBound(sigma, gamma, sigma * gamma, sigma * gamma < 1, sigma > 1 / gamma)


def eigenvalues(W: Array) -> Array:
    """Eigenvalues (complex) of a square matrix or of each of a stack (..., n, n).

    Computed on the CPU device: XLA has no GPU eigensolver for general matrices.

    Args:
        W: (..., n, n).

    Returns:
        (..., n) complex eigenvalues.
    """
    if getattr(W, "ndim", 0) < 2 or W.shape[-1] != W.shape[-2]:
        raise ValueError(f"W must be square (..., n, n), got shape {tuple(getattr(W, 'shape', ()))}")
    return jnp.linalg.eigvals(jax.device_put(W, jax.devices("cpu")[0]))
