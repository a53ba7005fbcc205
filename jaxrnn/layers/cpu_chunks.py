"""On the CPU a layer runs in chunks whose projected inputs stay near 8 MiB.

Why: XLA:CPU allocates an executable's temporaries on every call, and glibc's malloc
serves a request of 32 MiB or more with a fresh ``mmap`` whose pages fault in one by one:
the projected inputs of an LSTM at B 32, H 256, T 256 (32 MiB) took 46 ms to project
against 17 ms at T 255, with 14,948 page faults a call (docs/performance.md). Projecting
and scanning a chunk of steps at a time (``jaxrnn.layers.chunked_scan``) keeps every forward
temporary small. Measured, LSTM B 32, F 128, H 256, forward, whole T vs chunks of 32 / 64
/ 128 steps: T 256 106.8 vs 80.3 / 82.9 / 75.7 ms, T 1024 438 vs 367 / 350 / 369 ms; the
forward+backward was unchanged within noise (254 vs 256 / 247 / 286 ms, 1143 vs 1018 /
1069 / 1046 ms). A GPU allocates from a pool and runs one large GEMM best, so there the
layer projects all T at once.
"""

import jax
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import State
from jaxrnn.layers import chunked_scan

CHUNK_BYTES = 8 * 2**20  # projected inputs per chunk
MIN_STEPS = 16  # steps per chunk at least, however wide the rows


def platform_run(
    run: chunked_scan.ProjectAndScan,
    state: State,
    xs: Float[Array, "T B F"],
    mask: Bool[Array, "T B 1"] | None,
    resets: Bool[Array, "T B 1"] | None = None,
    *,
    width: int,
    reverse: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """``run(state, xs, mask, resets)``; on the CPU in chunks of about ``CHUNK_BYTES`` of projected
    inputs (``width`` features a step and row, at least ``MIN_STEPS`` steps a chunk)."""
    T, B = xs.shape[:2]
    chunk = max(MIN_STEPS, CHUNK_BYTES // max(1, B * width * xs.dtype.itemsize))
    if T <= chunk:
        return run(state, xs, mask, resets)

    def on_cpu(state, xs, mask, resets):
        return chunked_scan.chunked(run, state, xs, mask, resets, chunk=chunk, reverse=reverse)

    return jax.lax.platform_dependent(state, xs, mask, resets, cpu=on_cpu, default=run)
