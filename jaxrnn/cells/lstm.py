"""The LSTM of seed 003 (Hochreiter & Schmidhuber 1997), gates in PyTorch's order i, f, g, o.

    i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o),  a = W_xh x_t + b_xh + W_hh h_{t-1} + b_hh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The seed's ``C~_t`` is ``g``. With ``layer_norm=True`` the input and recurrent terms of
``a`` are each layer-normalised per gate, and ``c_t`` is normalised before the tanh
(Ba et al. 2016): ``h_t = o * tanh(LN(c_t))``.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn.cells.base import SummedCell, gate_norm
from jaxrnn.cells.init import Initializer

LSTMState = tuple[Float[Array, "*b H"], Float[Array, "*b H"]]


class LSTMCell(SummedCell):
    """LSTM cell; state ``(h, c)``, each (..., H).

    Defaults: W_xh Glorot uniform, each gate block of W_hh orthogonal, biases zero except
    the forget gate's ``b_xh`` block, set to ``forget_bias`` = 1.0 (Jozefowicz et al. 2015;
    Keras's ``unit_forget_bias``).
    """

    ln_c: Float[Array, " H"] | None
    ln_c_shift: Float[Array, " H"] | None
    n_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        forget_bias: float = 1.0,
        layer_norm: bool = False,
        W_xh_init: Initializer | None = None,
        W_hh_init: Initializer | None = None,
        dtype=jnp.float32,
    ):
        self._init_weights(
            input_size,
            hidden_size,
            key=key,
            layer_norm=layer_norm,
            W_xh_init=W_xh_init,
            W_hh_init=W_hh_init,
            dtype=dtype,
        )
        H = hidden_size
        self.b_xh = self.b_xh.at[H : 2 * H].set(forget_bias)
        self.ln_c = jnp.ones(H, dtype) if layer_norm else None
        self.ln_c_shift = jnp.zeros(H, dtype) if layer_norm else None

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
