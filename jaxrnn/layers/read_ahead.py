"""``lax.scan`` that reads each step's input slice one step ahead, into the carry.

Why: in a plain ``lax.scan`` XLA fuses the ``dynamic-slice`` that takes ``xs[t]`` into the
pointwise fusion that consumes it. On XLA:CPU (jaxlib 0.10) such a fusion of the LSTM's
gate maths is emitted as scalar code (``<1 x float>`` in its LLVM IR) instead of 8-wide
AVX2 vectors: about 210 us a step instead of 40-70 us for the pointwise part of an LSTM
step at B 32, H 256 (docs/performance.md). Loading ``xs[t+1]`` while step ``t`` runs makes
the slice a loop-carried value, which XLA materialises as a copy of its own; the gate
fusion then reads a plain buffer and is vectorised. The layers use this form on the CPU
only (``platform_scan``): a GPU fuses the slice without that penalty and would pay an
extra kernel launch per step. ``fused_scan`` runs its backward loop as a plain
``lax.scan``: there reading ahead measured slower (see there).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import PyTree

Body = Callable[[PyTree, PyTree], tuple[PyTree, PyTree]]  # (carry, x_t) -> (carry, y_t)
Scan = Callable[..., tuple[PyTree, PyTree]]  # scan(body, init, xs, *, reverse, unroll): lax.scan's signature


def scan(body: Body, init: PyTree, xs: PyTree, *, reverse: bool = False, unroll: int = 1) -> tuple[PyTree, PyTree]:
    """``jax.lax.scan(body, init, xs, reverse=..., unroll=...)`` with ``xs[t]`` sliced a step early.

    ``xs`` is a pytree of arrays with a common leading length (None leaves allowed).
    Returns ``(final_carry, stacked_outputs)`` like ``lax.scan``.
    """
    leaves = jax.tree.leaves(xs)
    length = leaves[0].shape[0] if leaves else 0
    if length == 0:
        return jax.lax.scan(body, init, xs, reverse=reverse)

    def at(t):
        return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, t, keepdims=False), xs)

    def step(carry, t):
        c, x_t = carry
        c, y = body(c, x_t)
        t_next = jnp.clip(t - 1 if reverse else t + 1, 0, length - 1)
        return (c, at(t_next)), y

    first = length - 1 if reverse else 0
    (c, _), ys = jax.lax.scan(step, (init, at(first)), jnp.arange(length), reverse=reverse, unroll=unroll)
    return c, ys


def platform_scan(
    body: Body, init: PyTree, xs: PyTree, *, reverse: bool = False, unroll: int = 1
) -> tuple[PyTree, PyTree]:
    """``scan`` (read-ahead) when compiled for the CPU, ``jax.lax.scan`` elsewhere; same contract."""

    def run(scan_fn):
        return lambda init, xs: scan_fn(body, init, xs, reverse=reverse, unroll=unroll)

    return jax.lax.platform_dependent(init, xs, cpu=run(scan), default=run(jax.lax.scan))
