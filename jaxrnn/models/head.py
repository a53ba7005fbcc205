"""Output head ``y_t = g(W_hy h_t + b_y)`` of the notes."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn._checks import check_count, prng_key

_ACTIVATIONS = {
    "linear": lambda a: a,
    "sigmoid": jax.nn.sigmoid,
    "softmax": lambda a: jax.nn.softmax(a, axis=-1),
}


class Head(eqx.Module):
    """Affine readout ``W_hy h + b_y`` applied to the last axis.

    ``__call__`` returns the pre-activation (logits), which is what the losses take;
    ``activate`` applies ``g`` ('linear', 'sigmoid' or 'softmax') for predictions.
    Init: W_hy Glorot uniform, b_y zero.

    Args:
        hidden_size: H, the features it reads (2H after a bidirectional "concat" layer).
        out_size: the outputs (classes, or target features).
        key: draws W_hy.
        activation: g of ``activate``: "linear", "sigmoid" or "softmax".
        dtype: of the weights.
    """

    W_hy: Float[Array, "out H"]
    b_y: Float[Array, " out"]
    activation: str = eqx.field(static=True, default="linear")

    def __init__(
        self, hidden_size: int, out_size: int, *, key: PRNGKeyArray, activation: str = "linear", dtype=jnp.float32
    ):
        hidden_size, out_size = check_count(hidden_size, "hidden_size"), check_count(out_size, "out_size")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.W_hy = jax.nn.initializers.glorot_uniform()(prng_key(key), (out_size, hidden_size), dtype)
        self.b_y = jnp.zeros(out_size, dtype)
        self.activation = activation

    def __call__(self, h: Float[Array, "*b H"]) -> Float[Array, "*b out"]:
        """Logits ``W_hy h + b_y``."""
        return h @ self.W_hy.T + self.b_y

    def activate(self, logits: Float[Array, "*b out"]) -> Float[Array, "*b out"]:
        """``g(logits)``: the prediction ``y``."""
        return _ACTIVATIONS[self.activation](logits)
