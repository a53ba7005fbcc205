"""What every cell shares: the input projection, the fused recurrent matmul, gate norms.

A cell computes ``s_t = step(s_{t-1}, project(x_t))``. ``project`` is affine in x and
is applied to all T steps at once, before the scan (one large matmul). ``step`` holds
what must stay inside the scan: one fused matmul ``h @ W_hh.T`` for all gates and the
pointwise gate maths. ``cell(s, x) == cell.step(s, cell.project(x))`` is the seeds'
single-step equation.

Weights are stored the way the seeds write them (``W_xh x_t``, column vectors), which is
also PyTorch's layout: ``W_xh`` is (G*H, input_size), ``W_hh`` is (G*H, H), with the G
gate blocks stacked along the rows. There are two bias vectors, ``b_xh`` (added in the
projection) and ``b_hh`` (added in the step), as in PyTorch; the seeds' ``b_h`` is their
sum. The GRU needs them apart (its candidate's ``b_hh`` block sits inside ``r * (...)``)
and keeping them apart everywhere makes the PyTorch round trip exact.
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from jaxrnn._checks import check_size, prng_key, resolve_named
from jaxrnn.cells.init import Initializer, gate_blocks, glorot_uniform, orthogonal

State = PyTree[Float[Array, "*batch H"]]

_EPS = 1e-5


def gate_norm(a: Float[Array, "*b G"], gain: Float[Array, " G"], n_gates: int) -> Array:
    """Layer normalisation of each gate's block of pre-activations (Ba et al. 2016).

    ``a`` holds ``n_gates`` blocks of H; each block is normalised to zero mean and unit
    variance over its H units, then scaled by ``gain``. The shift is the cell's bias.
    """
    blocks = a.reshape(*a.shape[:-1], n_gates, -1)
    mean = blocks.mean(-1, keepdims=True)
    var = jnp.square(blocks - mean).mean(-1, keepdims=True)
    normed = (blocks - mean) * jax.lax.rsqrt(var + _EPS)
    return normed.reshape(a.shape) * gain


class Cell(eqx.Module):
    """Base of the recurrent cells: parameters, ``project``, the fused ``recurrent`` matmul.

    Subclasses set ``n_gates`` and define ``step``, ``init_state`` and ``output``.
    States carry any leading batch shape: ``h`` is (..., H).
    """

    W_xh: Float[Array, "G in"]
    W_hh: Float[Array, "G H"]
    b_xh: Float[Array, " G"]
    b_hh: Float[Array, " G"]
    ln_x: Float[Array, " G"] | None
    ln_h: Float[Array, " G"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    n_gates: ClassVar[int]
    sums_inputs: ClassVar[bool] = False  # gates see xw and hw only as xw + recurrent(hw)

    def _init_weights(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        layer_norm: bool,
        W_xh_init: Initializer | None,
        W_hh_init: Initializer | None,
        dtype,
    ) -> None:
        input_size, hidden_size = check_size(input_size, "input_size"), check_size(hidden_size, "hidden_size")
        G, H = self.n_gates, hidden_size
        k_x, k_h = jax.random.split(prng_key(key))
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = gate_blocks(W_xh_init or glorot_uniform(), k_x, G, H, input_size, dtype)
        self.W_hh = gate_blocks(W_hh_init or orthogonal(), k_h, G, H, H, dtype)
        self.b_xh = jnp.zeros(G * H, dtype)
        self.b_hh = jnp.zeros(G * H, dtype)
        self.ln_x = jnp.ones(G * H, dtype) if layer_norm else None
        self.ln_h = jnp.ones(G * H, dtype) if layer_norm else None

    @property
    def layer_norm(self) -> bool:
        """Whether the gate pre-activations are layer-normalised."""
        return self.ln_x is not None

    def project(self, x: Float[Array, "*b in"]) -> Float[Array, "*b G"]:
        """Input side of every gate, ``W_xh x + b_xh``: apply to all time steps at once."""
        if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise TypeError(f"x must have a floating dtype, got {jnp.result_type(x)}")
        if jnp.shape(x)[-1:] != (self.input_size,):
            raise ValueError(f"x must have {self.input_size} features in its last axis, got shape {jnp.shape(x)}")
        if self.ln_x is not None:
            return gate_norm(x @ self.W_xh.T, self.ln_x, self.n_gates) + self.b_xh
        # b_xh rides in the matmul as a column against a feature of ones: XLA:CPU does not
        # fuse a bias add into a dot, and the extra pass over (T, B, G) cost 3-18 ms at
        # B 32, G 1024, T 64-256 (docs/performance.md).
        ones = jnp.ones((*x.shape[:-1], 1), x.dtype)
        return jnp.concatenate([x, ones], -1) @ jnp.concatenate([self.W_xh, self.b_xh[:, None]], 1).T

    def recurrent(self, hw: Float[Array, "*b G"]) -> Float[Array, "*b G"]:
        """Recurrent side of every gate, ``W_hh h + b_hh``, from the fused matmul ``hw = h @ W_hh.T``
        (layer-normalised per gate first if the cell has layer norm)."""
        if self.ln_h is not None:
            hw = gate_norm(hw, self.ln_h, self.n_gates)
        return hw + self.b_hh

    @property
    def fused(self) -> bool:
        """True when ``step(s, xw) = gates(s, xw, h @ W_hh.T)``: one recurrent matmul per step.

        Layers then use a scan whose backward pass forms ``dW_hh`` in one matmul after the
        loop instead of accumulating it step by step (``jaxrnn.layers.fused_scan``).
        """
        return True

    @property
    def gates_read_the_sum(self) -> bool:
        """True when ``gates`` reads ``xw`` and ``hw`` only through ``xw + hw + b_hh``.

        Their cotangents are then equal, and the fused scan's backward stores one of them.
        Holds for the cells that declare ``sums_inputs`` and have no layer norm.
        """
        return self.sums_inputs and self.ln_x is None and self.ln_h is None

    def step(self, state: State, xw: Float[Array, "*b G"]) -> State:
        """One recurrence step from the projected input ``xw = project(x_t)``."""
        return self.gates(state, xw, self.output(state) @ self.W_hh.T)

    @abc.abstractmethod
    def gates(self, state: State, xw: Float[Array, "*b G"], hw: Float[Array, "*b G"]) -> State:
        """The pointwise part of a step, given ``xw = project(x_t)`` and ``hw = h_{t-1} @ W_hh.T``.

        Must not read ``W_xh`` or ``W_hh`` (the fused scan differentiates it without them).
        """

    @abc.abstractmethod
    def init_state(self, batch_shape: tuple[int, ...] = ()) -> State:
        """The zero state with leading ``batch_shape``."""

    @abc.abstractmethod
    def output(self, state: State) -> Float[Array, "*b H"]:
        """The hidden vector ``h`` that the cell emits from ``state``."""

    def __call__(self, state: State, x: Float[Array, "*b in"]) -> State:
        """The seeds' step equation on a raw input: ``step(state, project(x))``."""
        return self.step(state, self.project(x))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
}


def resolve_activation(activation: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """Map 'tanh' / 'relu' / 'sigmoid' to the jax function; pass callables through."""
    return resolve_named(activation, ACTIVATIONS, "activation")
