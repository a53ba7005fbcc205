"""The LSTM on an NVIDIA GPU through cuDNN (``jax.experimental.rnn.lstm``), with the scan's contract.

Why: an XLA ``while`` loop launches the step's kernels (the recurrent GEMM, the gate
maths) once per step, and on a GPU a step at B 32, H 256 is a few microseconds of work;
cuDNN runs the whole sequence inside its own RNN kernels, and the backward pass too. Keras
3 routes its JAX LSTM through the same call. Measured on a GPU: not yet (docs/guides/gpu.md
says how to run ``python -m benchmarks.gpu``; the engine takes this path on a GPU from the
first run, and ``Engine(cudnn=False)`` turns it off).

What maps onto cuDNN's arguments:

- the weights: cuDNN's flat buffer holds, for every pseudo-layer (a direction of a
  layer), ``W_ih`` then ``W_hh``, and after all of them the biases ``b_ih``, ``b_hh``;
  gates in the order i, f, g, o. That is jaxrnn's ``W_xh``, ``W_hh``, ``b_xh``, ``b_hh``
  as they lie (PyTorch's layout too), so ``pack`` is a concatenation;
- ``lengths`` -> ``seq_lengths``: outputs past a row's length are zero and its final state
  is the state after its last valid step, as in the scan;
- ``reverse`` (a lone reverse layer): each row's valid prefix is reversed in place, run
  forward, and the outputs reversed back (``flip_valid``), which is the scan's reverse;
- a ``Bidirectional`` pair: one call with ``bidirectional=True`` (``lstm_pair``);
- zero-length rows, which cuDNN rejects (jax#17966): run with length 1, then their outputs
  are set to zero and their final state to the initial one.

Taken only where the result is the scan's (``takes``): an ``LSTMCell`` (its activations
are fixed) without layer norm, float32 weights and inputs, no remat, steps to run that
are a prefix of each row (``lengths``, not a general ``mask``), T > 0, and a CUDA backend
with JAX's GPU plugin (``available``). TF32: cuDNN follows JAX's matmul precision (TF32
unless ``jax_default_matmul_precision`` is "highest", as for XLA's own dots).
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxrnn.cells.lstm import LSTMCell, LSTMState

# (x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional) -> (y, h_n, c_n)
LSTMCall = Callable[..., tuple[Array, Array, Array]]


@functools.cache
def available() -> bool:
    """Whether this process has a CUDA backend and JAX's cuDNN RNN (the GPU plugin)."""
    try:
        jax.devices("cuda")
        from jax.experimental import rnn  # noqa: F401
    except (RuntimeError, ImportError):
        return False
    return True


def takes(cell, xs: Array, *, prefix: bool, remat: bool) -> bool:
    """Whether the cuDNN path computes what the scan computes for this layer and input.

    ``prefix``: the steps to run are a prefix of each row (no mask, or lengths alone).
    """
    return (
        type(cell) is LSTMCell
        and not cell.layer_norm
        and cell.W_hh.dtype == jnp.float32
        and xs.dtype == jnp.float32
        and xs.shape[0] > 0
        and prefix
        and not remat
    )


def pack(cells: Sequence[LSTMCell]) -> Float[Array, " P"]:
    """cuDNN's flat weight buffer for pseudo-layers ``cells`` (in cuDNN's order: layer by
    layer, forward direction first): every ``W_ih``, ``W_hh``, then every ``b_ih``, ``b_hh``."""
    weights = [w.ravel() for c in cells for w in (c.W_xh, c.W_hh)]
    biases = [b for c in cells for b in (c.b_xh, c.b_hh)]
    return jnp.concatenate(weights + biases)


def flip_valid(xs: Float[Array, "B T F"], lengths: Int[Array, " B"]) -> Float[Array, "B T F"]:
    """Each row's first ``lengths[b]`` steps in reverse order; the steps after stay in place."""
    t = jnp.arange(xs.shape[1])[None, :]
    index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return jnp.take_along_axis(xs, index[:, :, None], axis=1)


def _lstm() -> LSTMCall:
    from jax.experimental import rnn

    return rnn.lstm


def _call(
    lstm: LSTMCall | None,
    cells: Sequence[LSTMCell],
    xs: Float[Array, "B T F"],
    states: Sequence[LSTMState],
    lengths: Int[Array, " B"] | None,
    bidirectional: bool,
) -> tuple[Float[Array, "B T D"], list[LSTMState]]:
    """One cuDNN call of one layer (both directions if ``bidirectional``), zero-length rows
    handled around it. Returns batch-major outputs and a final state per direction."""
    B, T, F = xs.shape
    H = cells[0].hidden_size
    seq = jnp.full((B,), T, jnp.int32) if lengths is None else lengths.astype(jnp.int32)
    h0 = jnp.stack([s[0] for s in states])
    c0 = jnp.stack([s[1] for s in states])
    y, h_n, c_n = (lstm or _lstm())(xs, h0, c0, pack(cells), jnp.maximum(seq, 1), F, H, 1, 0.0, bidirectional)
    finals = [(h_n[d], c_n[d]) for d in range(len(cells))]
    if lengths is not None:  # rows of length 0 ran one step: undo it
        empty = seq == 0
        y = jnp.where(empty[:, None, None], 0, y)
        finals = [
            jax.tree.map(lambda new, old: jnp.where(empty[:, None], old, new), f, s) for f, s in zip(finals, states)
        ]
    return y, finals


def lstm_layer(
    cell: LSTMCell,
    xs: Float[Array, "T B F"],
    state: LSTMState,
    lengths: Int[Array, " B"] | None,
    *,
    reverse: bool = False,
    lstm: LSTMCall | None = None,
) -> tuple[LSTMState, Float[Array, "T B H"]]:
    """One LSTM layer by cuDNN: the scan's ``(final_state, outputs)`` over time-major ``xs``.

    ``lengths`` (B,) or None (every row runs all T steps); ``lstm`` is
    ``jax.experimental.rnn.lstm`` unless given (the tests pass its reference).
    """
    x = jnp.swapaxes(xs, 0, 1)
    seq = None if lengths is None else lengths.astype(jnp.int32)
    if reverse:
        x = flip_valid(x, jnp.full((x.shape[0],), x.shape[1]) if seq is None else seq)
    y, (final,) = _call(lstm, [cell], x, [state], seq, False)
    if reverse:
        y = flip_valid(y, jnp.full((y.shape[0],), y.shape[1]) if seq is None else seq)
    return final, jnp.swapaxes(y, 0, 1)


def lstm_pair(
    forward: LSTMCell,
    backward: LSTMCell,
    xs: Float[Array, "B T F"],
    states: tuple[LSTMState, LSTMState],
    lengths: Int[Array, " B"] | None,
    *,
    lstm: LSTMCall | None = None,
) -> tuple[Float[Array, "B T H"], Float[Array, "B T H"], tuple[LSTMState, LSTMState]]:
    """A bidirectional LSTM layer in one cuDNN call over batch-major ``xs``: the forward
    direction's outputs, the backward direction's (aligned with the inputs), and both final
    states."""
    y, (f, b) = _call(lstm, [forward, backward], xs, states, lengths, True)
    H = forward.hidden_size
    return y[..., :H], y[..., H:], (f, b)
