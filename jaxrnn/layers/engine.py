"""How a layer computes its cell over time: the one place where its paths are chosen.

A ``Recurrent`` layer holds an ``Engine``, the fast paths it may take. Each path is a
separate implementation of the same computation, with the same parameters and the same
values and gradients (up to the order of floating-point sums; ``tests/test_scan_paths.py``
holds each against autodiff of the notes' equations). A path is taken where its setting
is on and the platform and configuration allow it:

- ``fused_backward``: a hand-written backward pass that forms ``dW_hh`` after the loop
  (``fused_scan``); cells that read ``h`` through one matmul (``FusedCell``).
- ``shared_cotangent``: that backward stores one cotangent for ``xw`` and ``hw``; cells
  that read their sum (``SummedCell``) without layer norm.
- ``bias_column``: ``b_xh`` as a column of the input GEMM (``bias_column``); CPU, cells
  without layer norm.
- ``cpu_chunks``: projection and scan in chunks of about 8 MiB of projected inputs
  (``cpu_chunks``); CPU, T above one chunk.
- ``read_ahead``: the forward scan reads each step's input one step early
  (``read_ahead``); CPU.
- ``cudnn``: the LSTM by cuDNN (``cudnn``); CUDA, a float32 ``LSTMCell`` without layer
  norm, no remat, no mask other than lengths, no resets (cuDNN's LSTM runs each row as
  one sequence; with resets the layer takes the scan paths).

The CPU and GPU paths are chosen when the program is compiled for a device
(``jax.lax.platform_dependent``), so one model runs the right one wherever it is placed.
``Engine()`` allows every path (the default); ``Engine.plain()`` none, which leaves the
reference: ``cell.step`` in a ``lax.scan`` differentiated by autodiff (``plain_scan``).
``with_engine(model, Engine.plain())`` sets it on every layer of a model. ``remat`` is a
memory setting of the layer, not a path: a layer with remat runs its scan paths inside
checkpointed chunks and never cuDNN.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxrnn._checks import check_sequence, check_state
from jaxrnn.cells.base import Cell, FusedCell, State
from jaxrnn.layers import bias_column, chunked_scan, cpu_chunks, cudnn, read_ahead
from jaxrnn.layers.fused_scan import fused_scan
from jaxrnn.layers.mask import step_mask
from jaxrnn.layers.plain_scan import plain_scan


class Engine(eqx.Module):
    """The fast paths a layer may take (see the module's table); every one on by default.

    Args:
        fused_backward: the hand-written backward of ``FusedCell`` scans.
        shared_cotangent: one stored cotangent for summed cells in that backward.
        bias_column: ``b_xh`` inside the input GEMM on the CPU.
        cpu_chunks: chunked projection and scan on the CPU.
        read_ahead: the read-ahead forward scan on the CPU.
        cudnn: cuDNN's LSTM on a CUDA GPU.
    """

    fused_backward: bool = True
    shared_cotangent: bool = True
    bias_column: bool = True
    cpu_chunks: bool = True
    read_ahead: bool = True
    cudnn: bool = True

    def __check_init__(self):
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise TypeError(f"Engine.{f.name} must be a bool, got {getattr(self, f.name)!r}")

    @classmethod
    def plain(cls) -> "Engine":
        """No fast path: ``cell.step`` in ``lax.scan``, differentiated by autodiff."""
        return cls(**{f.name: False for f in dataclasses.fields(cls)})


def checked(
    cell: Cell,
    xs: Float[Array, "B T F"],
    state: State | None,
    lengths: Int[Array, " B"] | None,
    mask: Bool[Array, "B T"] | None,
) -> tuple[State, Bool[Array, "T B 1"] | None, Int[Array, " B"] | None]:
    """A layer's arguments checked and made ready for ``run``: ``(state, valid, lengths)``,
    ``state`` the zero state if None, ``valid`` the steps to run (None: all)."""
    check_sequence(xs, cell.input_size)
    B, T, _ = xs.shape
    zero = cell.init_state((B,))
    if state is None:
        state = zero
    else:
        check_state(state, zero)
    return state, step_mask(B, T, lengths, mask), None if lengths is None else jnp.asarray(lengths)


def steps(cell: Cell, xs: Float[Array, "B T F"], valid: Bool[Array, "T B 1"] | None) -> Float[Array, "T B F"]:
    """``xs`` (B, T F) or a chunk of it, as the scans read it: time-major, in the cell's
    dtype, zero at skipped steps (a skipped step's input is never read: zeros keep whatever
    the padding holds, NaN or inf, out of the backward pass, where it would meet 0 * NaN)."""
    xs = jnp.swapaxes(xs, 0, 1).astype(cell.W_xh.dtype)
    return xs if valid is None else jnp.where(valid, xs, jnp.zeros((), xs.dtype))


def run(
    engine: Engine,
    cell: Cell,
    xs: Float[Array, "B T F"],
    state: State,
    valid: Bool[Array, "T B 1"] | None,
    *,
    resets: Bool[Array, "T B 1"] | None = None,
    initial: State | None = None,
    lengths: Int[Array, " B"] | None,
    prefix: bool,
    reverse: bool,
    unroll: int,
    remat: bool,
    chunk: int | None,
) -> tuple[State, Float[Array, "T B H"]]:
    """``cell`` over the layer's ``xs`` (B, T, F) by the paths ``engine`` allows.

    Remat takes its chunks of steps from ``xs`` as given (``chunked_scan.rematerialized``:
    no time-major copy of the whole input); every other path reads ``steps(cell, xs,
    valid)``. ``valid`` (T, B, 1) marks the steps to run (None: all); ``prefix`` says they are a
    prefix of each row, given by ``lengths`` (None: all T). ``resets`` (T, B, 1) marks
    the steps before which the state returns to ``initial`` (``resets.step_resets``; None:
    none). Returns ``(final_state, outputs)``, outputs (T, B, H).
    """
    scan = read_ahead.platform_scan if engine.read_ahead else jax.lax.scan

    def project_and_scan(state, xs, valid, resets):
        xw = bias_column.project(cell, xs) if engine.bias_column else cell.project(xs)
        if engine.fused_backward and isinstance(cell, FusedCell):
            return fused_scan(
                cell, xw, state, valid, resets=resets, initial=initial, reverse=reverse, unroll=unroll, scan=scan,
                shared_cotangent=engine.shared_cotangent,
            )  # fmt: skip
        return plain_scan(
            cell, xw, state, valid, resets=resets, initial=initial, reverse=reverse, unroll=unroll, scan=scan
        )

    if remat:
        prepare = functools.partial(steps, cell)
        return chunked_scan.rematerialized(
            project_and_scan, prepare, state, xs, valid, resets, chunk=chunk, reverse=reverse
        )
    xs = steps(cell, xs, valid)

    def scan_paths(state, xs, valid):
        if not engine.cpu_chunks:
            return project_and_scan(state, xs, valid, resets)
        width = cell.W_xh.shape[0]
        return cpu_chunks.platform_run(project_and_scan, state, xs, valid, resets, width=width, reverse=reverse)

    takes_cudnn = engine.cudnn and resets is None and cudnn.takes(cell, xs, prefix=prefix, remat=remat)
    if takes_cudnn and cudnn.available():

        def on_gpu(state, xs, valid):
            return cudnn.lstm_layer(cell, xs, state, lengths, reverse=reverse)

        return jax.lax.platform_dependent(state, xs, valid, cuda=on_gpu, default=scan_paths)
    return scan_paths(state, xs, valid)


class Direction(Protocol):
    """What ``run_pair`` reads of each of its layers (``Recurrent`` has it)."""

    cell: Cell
    engine: Engine
    remat: bool


def run_pair(
    forward: Direction,
    backward: Direction,
    xs: Float[Array, "B T F"],
    states: tuple[State | None, State | None],
    *,
    lengths: Int[Array, " B"] | None,
    mask: Bool[Array, "B T"] | None,
    separately: Callable[[], tuple[Array, Array, tuple[State, State]]],
) -> tuple[Float[Array, "B T H"], Float[Array, "B T H"], tuple[State, State]]:
    """A bidirectional pair of layers over ``xs``: ``(forward outputs, backward outputs,
    (forward state, backward state))``. One cuDNN call with both directions where both
    layers would take cuDNN; else ``separately()``, each layer by its own paths."""
    if not cudnn.available():
        return separately()
    s_f, valid, lengths = checked(forward.cell, xs, states[0], lengths, mask)
    s_b, _, _ = checked(backward.cell, xs, states[1], lengths, mask)
    xs_f = steps(forward.cell, xs, valid)
    layers = (forward, backward)
    if not all(x.engine.cudnn and cudnn.takes(x.cell, xs_f, prefix=mask is None, remat=x.remat) for x in layers):
        return separately()

    def on_gpu(xs, s_f, s_b, valid):
        return cudnn.lstm_pair(forward.cell, backward.cell, jnp.swapaxes(xs, 0, 1), (s_f, s_b), lengths)

    return jax.lax.platform_dependent(xs_f, s_f, s_b, valid, cuda=on_gpu, default=lambda *_: separately())
