"""The GRU (Cho et al. 2014) in its two published forms; gate blocks in the order r, z, n.

Both forms use the notes' meaning of the update gate: ``z`` weighs the *candidate*,

    r = σ(a_r),  z = σ(a_z),  h_t = (1 - z) * h_{t-1} + z * n

so z -> 1 takes the new candidate and z -> 0 keeps the old state. They differ in where
the reset gate acts on the candidate:

- ``ResetBeforeGRUCell``, exactly notes 003:
  ``n = tanh(W_xn x_t + b_xn + W_hn (r * h_{t-1}) + b_hn)``. Two dependent matmuls per
  step: [W_hr; W_hz] h first, then W_hn (r * h).
- ``GRUCell``, reset after the matmul (the form of PyTorch, cuDNN and Keras):
  ``n = tanh(W_xn x_t + b_xn + r * (W_hn h_{t-1} + b_hn))``. One fused matmul W_hh h
  for all three gates per step, hence faster.

PyTorch writes ``h_t = (1 - z') * n + z' * h_{t-1}``: its z' gates the *old* state, and
z' = 1 - z. Since σ(-a) = 1 - σ(a), its weights are ours with the z rows and z biases
negated; ``jaxrnn.from_torch`` / ``to_torch`` do that exactly.
"""

from typing import Unpack

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxrnn.cells.base import Cell, CellOptions, FusedCell, gate_norm, gate_parameters


class _AbstractGRU(Cell):
    """What both GRU forms share, fields and ``__init__`` aside: three gate blocks (r, z,
    n), the state ``h`` and its output."""

    n_gates = 3

    def init_state(self, batch_shape: tuple[int, ...] = ()) -> Float[Array, "*b H"]:
        """Zeros of shape (*batch_shape, H)."""
        return jnp.zeros((*batch_shape, self.hidden_size), self.W_hh.dtype)

    def output(self, h: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
        """The state is the output."""
        return h


class GRUCell(_AbstractGRU, FusedCell):
    """GRU cell with the reset gate after the matmul (PyTorch's form); state ``h`` (..., H).

    Args:
        input_size: features of ``x_t``.
        hidden_size: H.
        key: PRNG key of the initial weights.
        **options: ``CellOptions`` (``layer_norm``, ``W_xh_init``, ``W_hh_init``, ``dtype``).

    Defaults: W_xh Glorot uniform, each gate block of W_hh orthogonal, biases zero.
    The notes' reset-before form is ``ResetBeforeGRUCell``.
    """

    W_xh: Float[Array, "3H in"]
    W_hh: Float[Array, "3H H"]
    b_xh: Float[Array, " 3H"]
    b_hh: Float[Array, " 3H"]
    ln_x: Float[Array, " 3H"] | None
    ln_h: Float[Array, " 3H"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray, **options: Unpack[CellOptions]):
        params = gate_parameters(self.n_gates, input_size, hidden_size, key, **options)
        self.W_xh, self.W_hh, self.b_xh, self.b_hh, self.ln_x, self.ln_h, self.input_size, self.hidden_size = params

    def gates(
        self, h: Float[Array, "*b H"], xw: Float[Array, "*b 3H"], hw: Float[Array, "*b 3H"]
    ) -> Float[Array, "*b H"]:
        """``r, z = σ(xw_r + hw_r), σ(xw_z + hw_z)``, ``n = tanh(xw_n + r * hw_n)``; returns ``h_t``."""
        x_r, x_z, x_n = jnp.split(xw, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(hw, 3, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        return (1 - z) * h + z * n


class ResetBeforeGRUCell(_AbstractGRU):
    """GRU cell of the notes (003), the reset gate applied to ``h`` before ``W_hn``; state
    ``h`` (..., H).

    Same parameters and defaults as ``GRUCell``; two dependent recurrent matmuls a step.

    Args:
        input_size: F, features of each input step.
        hidden_size: H, the state's size.
        key: initialises the weights.
        **options: as ``GRUCell``'s (``init``, ``layer_norm``, ``dtype``, ...).
    """

    W_xh: Float[Array, "3H in"]
    W_hh: Float[Array, "3H H"]
    b_xh: Float[Array, " 3H"]
    b_hh: Float[Array, " 3H"]
    ln_x: Float[Array, " 3H"] | None
    ln_h: Float[Array, " 3H"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray, **options: Unpack[CellOptions]):
        params = gate_parameters(self.n_gates, input_size, hidden_size, key, **options)
        self.W_xh, self.W_hh, self.b_xh, self.b_hh, self.ln_x, self.ln_h, self.input_size, self.hidden_size = params

    def step(self, h: Float[Array, "*b H"], xw: Float[Array, "*b 3H"]) -> Float[Array, "*b H"]:
        """One step from ``xw = project(x_t)``; returns ``h_t``."""
        H = self.hidden_size
        x_r, x_z, x_n = jnp.split(xw, 3, axis=-1)
        a_rz = h @ self.W_hh[: 2 * H].T
        if self.ln_h is not None:
            a_rz = gate_norm(a_rz, self.ln_h[: 2 * H], 2)
        h_r, h_z = jnp.split(a_rz + self.b_hh[: 2 * H], 2, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        a_n = (r * h) @ self.W_hh[2 * H :].T
        if self.ln_h is not None:
            a_n = gate_norm(a_n, self.ln_h[2 * H :], 1)
        n = jnp.tanh(x_n + a_n + self.b_hh[2 * H :])
        return (1 - z) * h + z * n
