"""The simple (Elman) RNN of notes 000-003: h_t = f(W_xh x_t + W_hh h_{t-1} + b_h)."""

from collections.abc import Callable
from typing import Unpack

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn.cells.base import CellOptions, SummedCell, gate_parameters, resolve_activation


class SimpleRNNCell(SummedCell):
    """Elman cell ``h_t = f(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)``; state ``h`` (..., H).

    Args:
        input_size: features of ``x_t``.
        hidden_size: H.
        key: PRNG key of the initial weights.
        activation: 'tanh' (default), 'relu', 'sigmoid' or any elementwise callable.
        **options: ``CellOptions`` (``layer_norm``, ``W_xh_init``, ``W_hh_init``, ``dtype``).

    Defaults: W_xh Glorot uniform, W_hh orthogonal, biases zero. For the IRNN of
    Le et al. (2015) pass ``activation='relu', W_hh_init=jaxrnn.init.identity()``.
    ``layer_norm=True`` normalises the two pre-activation terms (not in the notes).
    """

    W_xh: Float[Array, "H in"]
    W_hh: Float[Array, "H H"]
    b_xh: Float[Array, " H"]
    b_hh: Float[Array, " H"]
    ln_x: Float[Array, " H"] | None
    ln_h: Float[Array, " H"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    n_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        activation: str | Callable[[Array], Array] = "tanh",
        **options: Unpack[CellOptions],
    ):
        self.activation = resolve_activation(activation)
        params = gate_parameters(self.n_gates, input_size, hidden_size, key, **options)
        self.W_xh, self.W_hh, self.b_xh, self.b_hh, self.ln_x, self.ln_h, self.input_size, self.hidden_size = params

    def activate(self, h: Float[Array, "*b H"], a: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
        """``h_t = f(a)``, ``a = W_xh x_t + b_xh + W_hh h_{t-1} + b_hh``."""
        return self.activation(a)

    def init_state(self, batch_shape: tuple[int, ...] = ()) -> Float[Array, "*b H"]:
        """Zeros of shape (*batch_shape, H)."""
        return jnp.zeros((*batch_shape, self.hidden_size), self.W_hh.dtype)

    def output(self, h: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
        """The state is the output."""
        return h
