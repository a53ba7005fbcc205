"""The simple (Elman) RNN of seeds 000-003: h_t = f(W_xh x_t + W_hh h_{t-1} + b_h)."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn.cells.base import SummedCell, resolve_activation
from jaxrnn.cells.init import Initializer


class SimpleRNNCell(SummedCell):
    """Elman cell ``h_t = f(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)``; state ``h`` (..., H).

    ``activation``: 'tanh' (default), 'relu', 'sigmoid' or any elementwise callable.
    Defaults: W_xh Glorot uniform, W_hh orthogonal, biases zero. For the IRNN of
    Le et al. (2015) pass ``activation='relu', W_hh_init=jaxrnn.init.identity()``.
    ``layer_norm=True`` normalises the two pre-activation terms (not in the seeds).
    """

    activation: Callable[[Array], Array] = eqx.field(static=True)
    n_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        activation: str | Callable[[Array], Array] = "tanh",
        layer_norm: bool = False,
        W_xh_init: Initializer | None = None,
        W_hh_init: Initializer | None = None,
        dtype=jnp.float32,
    ):
        self.activation = resolve_activation(activation)
        self._init_weights(
            input_size,
            hidden_size,
            key=key,
            layer_norm=layer_norm,
            W_xh_init=W_xh_init,
            W_hh_init=W_hh_init,
            dtype=dtype,
        )

    def activate(self, h: Float[Array, "*b H"], a: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
        """``h_t = f(a)``, ``a = W_xh x_t + b_xh + W_hh h_{t-1} + b_hh``."""
        return self.activation(a)

    def init_state(self, batch_shape: tuple[int, ...] = ()) -> Float[Array, "*b H"]:
        """Zeros of shape (*batch_shape, H)."""
        return jnp.zeros((*batch_shape, self.hidden_size), self.W_hh.dtype)

    def output(self, h: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
        """The state is the output."""
        return h
