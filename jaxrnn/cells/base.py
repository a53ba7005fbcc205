"""What every cell shares: its parameters, the input and recurrent terms, gate norms.

A cell computes ``s_t = step(s_{t-1}, project(x_t))``: ``project`` is the input term of
every gate, ``step`` the rest of the notes' equation. ``cell(s, x)`` is that single step.
Cells are their equations and nothing else: how a layer computes them fast (the input
projection of all T steps in one matmul, the recurrent matmul, the backward pass) is the
layers' business (``jaxrnn.layers``). Most cells read ``h_{t-1}`` through one matmul for
all gates (``FusedCell``); the simple RNN and the LSTM further read only the sum of the
two terms (``SummedCell``); the reset-before GRU is neither and defines ``step``.

Weights are stored the way the notes write them (``W_xh x_t``, column vectors), which is
also PyTorch's layout: ``W_xh`` is (G*H, input_size), ``W_hh`` is (G*H, H), with the G
gate blocks stacked along the rows. There are two bias vectors, ``b_xh`` (added in the
projection) and ``b_hh`` (added in the step), as in PyTorch; the notes' ``b_h`` is their
sum. The GRU needs them apart (its candidate's ``b_hh`` block sits inside ``r * (...)``)
and keeping them apart everywhere makes the PyTorch round trip exact.
"""

import abc
from collections.abc import Callable
from typing import ClassVar, TypedDict, Unpack

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from jaxrnn._checks import check_count, check_state, prng_key, resolve_named
from jaxrnn.cells.init import Initializer, gate_blocks, glorot_uniform, orthogonal

State = PyTree[Float[Array, "*batch H"]]

_EPS = 1e-5


def gate_norm(a: Float[Array, "*b G"], gain: Float[Array, " G"], n_gates: int) -> Array:
    """Layer normalisation of each gate's block of pre-activations (Ba et al. 2016).

    ``a`` holds ``n_gates`` blocks of H; each block is normalised to zero mean and unit
    variance over its H units, then scaled by ``gain``. The shift is the cell's bias.

    Args:
        a: pre-activations (..., G), G = n_gates * H.
        gain: (G,).
        n_gates: the blocks.

    Returns:
        (..., G) normalised and scaled.
    """
    blocks = a.reshape(*a.shape[:-1], n_gates, -1)
    mean = blocks.mean(-1, keepdims=True)
    var = jnp.square(blocks - mean).mean(-1, keepdims=True)
    normed = (blocks - mean) * jax.lax.rsqrt(var + _EPS)
    return normed.reshape(a.shape) * gain


class CellOptions(TypedDict, total=False):
    """The construction options every cell takes (keyword arguments of its ``__init__``).

    Args:
        layer_norm: layer-normalise the input and recurrent terms of every gate
            (Ba et al. 2016); default False.
        W_xh_init: initialiser of ``W_xh``, default Glorot uniform (``jaxrnn.init``).
        W_hh_init: initialiser of each (H, H) gate block of ``W_hh``, default orthogonal.
        dtype: of every parameter, default float32.
    """

    layer_norm: bool
    W_xh_init: Initializer | None
    W_hh_init: Initializer | None
    dtype: jnp.dtype


def gate_parameters(
    n_gates: int, input_size: int, hidden_size: int, key: PRNGKeyArray, **options: Unpack[CellOptions]
) -> tuple[Array, Array, Array, Array, Array | None, Array | None, int, int]:
    """Freshly initialised parameters of a cell of ``n_gates`` gate blocks (``CellOptions``):
    ``(W_xh, W_hh, b_xh, b_hh, ln_x, ln_h, input_size, hidden_size)``, the order of every
    cell's fields (``Cell``)."""
    unknown = sorted(set(options) - set(CellOptions.__annotations__))
    if unknown:
        raise TypeError(f"unknown cell option(s) {unknown}; a cell takes {sorted(CellOptions.__annotations__)}")
    input_size, hidden_size = check_count(input_size, "input_size"), check_count(hidden_size, "hidden_size")
    layer_norm, dtype = options.get("layer_norm", False), options.get("dtype", jnp.float32)
    G, H = n_gates, hidden_size
    k_x, k_h = jax.random.split(prng_key(key))
    W_xh = gate_blocks(options.get("W_xh_init") or glorot_uniform(), k_x, G, H, input_size, dtype)
    W_hh = gate_blocks(options.get("W_hh_init") or orthogonal(), k_h, G, H, H, dtype)
    b_xh, b_hh = jnp.zeros(G * H, dtype), jnp.zeros(G * H, dtype)
    ln_x, ln_h = (jnp.ones(G * H, dtype), jnp.ones(G * H, dtype)) if layer_norm else (None, None)
    return W_xh, W_hh, b_xh, b_hh, ln_x, ln_h, input_size, hidden_size


class Cell(eqx.Module):
    """Abstract base of the recurrent cells: the input term, the recurrent term, one step.

    It holds no field: every concrete cell declares all of its fields (``W_xh``
    (G*H, in), ``W_hh`` (G*H, H), ``b_xh``, ``b_hh`` (G*H,), the layer-norm gains
    ``ln_x``, ``ln_h`` or None, ``input_size``, ``hidden_size``) and its ``__init__`` in
    one final class. A subclass defines its step (through one of the two abstract
    subclasses below, or ``step`` itself when neither fits), ``init_state`` and
    ``output``. States carry any leading batch shape: ``h`` is (..., H). Which fast path
    a layer may take follows from the abstract class a cell derives from (``FusedCell``,
    ``SummedCell``).
    """

    W_xh: eqx.AbstractVar[Float[Array, "G in"]]
    W_hh: eqx.AbstractVar[Float[Array, "G H"]]
    b_xh: eqx.AbstractVar[Float[Array, " G"]]
    b_hh: eqx.AbstractVar[Float[Array, " G"]]
    ln_x: eqx.AbstractVar[Float[Array, " G"] | None]
    ln_h: eqx.AbstractVar[Float[Array, " G"] | None]
    input_size: eqx.AbstractVar[int]
    hidden_size: eqx.AbstractVar[int]

    n_gates: ClassVar[int]

    @property
    def layer_norm(self) -> bool:
        """Whether the gate pre-activations are layer-normalised."""
        return self.ln_x is not None

    def project(self, x: Float[Array, "*b in"]) -> Float[Array, "*b G"]:
        """Input term of every gate, ``W_xh x + b_xh`` (``LN(W_xh x) + b_xh`` with layer norm)."""
        if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise TypeError(f"x must have a floating dtype, got {jnp.result_type(x)}")
        if jnp.shape(x)[-1:] != (self.input_size,):
            raise ValueError(f"x must have {self.input_size} features in its last axis, got shape {jnp.shape(x)}")
        xw = x @ self.W_xh.T
        return (xw if self.ln_x is None else gate_norm(xw, self.ln_x, self.n_gates)) + self.b_xh

    def recurrent(self, hw: Float[Array, "*b G"]) -> Float[Array, "*b G"]:
        """Recurrent term of every gate, ``W_hh h + b_hh``, from ``hw = h @ W_hh.T``
        (``LN(hw) + b_hh`` with layer norm)."""
        return (hw if self.ln_h is None else gate_norm(hw, self.ln_h, self.n_gates)) + self.b_hh

    @abc.abstractmethod
    def step(self, state: State, xw: Float[Array, "*b G"]) -> State:
        """One recurrence step from the input term ``xw = project(x_t)``; returns the new state."""

    @abc.abstractmethod
    def init_state(self, batch_shape: tuple[int, ...] = ()) -> State:
        """The zero state with leading ``batch_shape``."""

    @abc.abstractmethod
    def output(self, state: State) -> Float[Array, "*b H"]:
        """The hidden vector ``h`` that the cell emits from ``state``."""

    def __call__(self, state: State, x: Float[Array, "*b in"]) -> State:
        """The notes' step equation on a raw input: ``step(state, project(x))``.

        Args:
            state: the state before the step, leading shape that of ``x`` but its last axis.
            x: the input, (..., input_size).

        Returns:
            The state after the step: (..., H), or the LSTM's pair (h, c).

        Raises:
            ValueError: naming both, for a ``state`` of another shape or dtype than
                ``init_state(x.shape[:-1])``.
        """
        xw = self.project(x)
        check_state(state, self.init_state(jnp.shape(x)[:-1]))
        return self.step(state, xw)


class FusedCell(Cell):
    """A cell whose step reads ``h_{t-1}`` only through one matmul for all its gates:

        step(s, xw) = gates(s, xw, recurrent(output(s) @ W_hh.T))

    Subclasses define ``gates``, the pointwise maths. Layers may then run the recurrent
    matmul themselves and differentiate ``gates`` alone (``jaxrnn.layers.fused_scan``).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: a FusedCell's step is gates(...) of one recurrent matmul; define gates")

    def step(self, state: State, xw: Float[Array, "*b G"]) -> State:
        """``gates(state, xw, recurrent(output(state) @ W_hh.T))``."""
        return self.gates(state, xw, self.recurrent(self.output(state) @ self.W_hh.T))

    @abc.abstractmethod
    def gates(self, state: State, xw: Float[Array, "*b G"], hw: Float[Array, "*b G"]) -> State:
        """The pointwise part of a step from the input term ``xw`` and the recurrent term ``hw``."""


class SummedCell(FusedCell):
    """A fused cell whose gates read the two terms only through their sum
    ``a = W_xh x_t + b_xh + W_hh h_{t-1} + b_hh`` (the simple RNN, the LSTM).

    Subclasses define ``activate(state, a)``. Without layer norm the cotangents of both
    terms are then that of ``a``, and a layer's backward stores it once.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "gates" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: a SummedCell's gates read xw + hw; define activate")

    def gates(self, state: State, xw: Float[Array, "*b G"], hw: Float[Array, "*b G"]) -> State:
        """``activate(state, xw + hw)``."""
        return self.activate(state, xw + hw)

    @abc.abstractmethod
    def activate(self, state: State, a: Float[Array, "*b G"]) -> State:
        """The pointwise part of a step from the summed pre-activations ``a`` of every gate."""


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
}


def resolve_activation(activation: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """Map 'tanh' / 'relu' / 'sigmoid' to the jax function; pass callables through."""
    return resolve_named(activation, ACTIVATIONS, "activation")
