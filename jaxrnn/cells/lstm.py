"""The LSTM of notes 003 (Hochreiter & Schmidhuber 1997), gates in PyTorch's order i, f, g, o.

    i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o),  a = W_xh x_t + b_xh + W_hh h_{t-1} + b_hh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The notes' ``C~_t`` is ``g``. With ``layer_norm=True`` the input and recurrent terms of
``a`` are each layer-normalised per gate, and ``c_t`` is normalised before the tanh
(Ba et al. 2016): ``h_t = o * tanh(LN(c_t))``.
"""

from typing import Unpack

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn.cells.base import CellOptions, SummedCell, gate_norm, gate_parameters

LSTMState = tuple[Float[Array, "*b H"], Float[Array, "*b H"]]


class LSTMCell(SummedCell):
    """LSTM cell; state ``(h, c)``, each (..., H).

    Args:
        input_size: features of ``x_t``.
        hidden_size: H.
        key: PRNG key of the initial weights.
        forget_bias: the forget gate's ``b_xh`` block, default 1.0 (Jozefowicz et al.
            2015; Keras's ``unit_forget_bias``).
        **options: ``CellOptions`` (``layer_norm``, ``W_xh_init``, ``W_hh_init``, ``dtype``).

    Defaults: W_xh Glorot uniform, each gate block of W_hh orthogonal, biases zero except
    the forget gate's ``b_xh`` block.
    """

    W_xh: Float[Array, "4H in"]
    W_hh: Float[Array, "4H H"]
    b_xh: Float[Array, " 4H"]
    b_hh: Float[Array, " 4H"]
    ln_x: Float[Array, " 4H"] | None
    ln_h: Float[Array, " 4H"] | None
    ln_c: Float[Array, " H"] | None
    ln_c_shift: Float[Array, " H"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    n_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        forget_bias: float = 1.0,
        **options: Unpack[CellOptions],
    ):
        params = gate_parameters(self.n_gates, input_size, hidden_size, key, **options)
        self.W_xh, self.W_hh, self.b_xh, self.b_hh, self.ln_x, self.ln_h, self.input_size, self.hidden_size = params
        H, dtype = hidden_size, self.W_hh.dtype
        self.b_xh = self.b_xh.at[H : 2 * H].set(forget_bias)
        self.ln_c = jnp.ones(H, dtype) if self.ln_x is not None else None
        self.ln_c_shift = jnp.zeros(H, dtype) if self.ln_x is not None else None

    def activate(self, state: LSTMState, a: Float[Array, "*b 4H"]) -> LSTMState:
        """The LSTM's gate maths from the pre-activations ``a`` of i, f, g, o; returns ``(h_t, c_t)``."""
        _, c = state
        a_i, a_f, a_g, a_o = jnp.split(a, 4, axis=-1)
        c = jax.nn.sigmoid(a_f) * c + jax.nn.sigmoid(a_i) * jnp.tanh(a_g)
        c_out = c if self.ln_c is None else gate_norm(c, self.ln_c, 1) + self.ln_c_shift
        h = jax.nn.sigmoid(a_o) * jnp.tanh(c_out)
        return h, c

    def init_state(self, batch_shape: tuple[int, ...] = ()) -> LSTMState:
        """``(h, c)`` zeros, each (*batch_shape, H)."""
        zeros = jnp.zeros((*batch_shape, self.hidden_size), self.W_hh.dtype)
        return zeros, zeros

    def output(self, state: LSTMState) -> Float[Array, "*b H"]:
        """``h``."""
        return state[0]
