"""XLA:CPU compiler options for the programs ``jaxrnn.train`` compiles: fit's blocks,
``evaluate`` and ``predict``.

Why: XLA's copy insertion copies loop-carried buffers at every step of a ``lax.scan``
whenever it cannot prove that a buffer's old value is dead when the new one is written;
the layers' read-ahead carries (``jaxrnn.layers.read_ahead``) and their residuals meet
that case. With ``xla_cpu_copy_insertion_use_region_analysis`` it proves more: the
LSTM's backward loop body (B 32, H 64) goes from 29 operations a step to 18, all 11 of
its copies gone, and its forward from 15 to 14. Measured per update inside fit's blocks
(``jaxrnn.fit``, Adam, MSE, batch 32; each block call timed, median of 24 per setting,
the two settings alternated in one process, 2026-11-24): LSTM T 50, F 8, H 64 3.63 ->
3.26 ms and 4.12 -> 3.53 ms (two runs); T 20, F 8, H 32 0.75 -> 0.71 ms; T 100, F 32,
H 256 91.3 -> 82.4 ms; GRU T 50, H 64 3.03 -> 2.72 ms; simple RNN 1.22 -> 1.10 ms.
``predict`` of the same LSTM on 2048 sequences: 74.1 -> 67.6 ms (T 50, H 64), 9.7 ->
9.0 ms (T 20, H 32); on 512 at T 100, H 256: 225.8 -> 192.3 ms.
Copy insertion moves no arithmetic, so the results are bit-identical (tested). The
options are per compilation: a user's own ``jit`` is untouched, and other platforms get
none (the option is XLA:CPU's).
"""

import functools
from collections.abc import Callable

import equinox as eqx
import jax

CPU_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compiler_options(platform: str) -> dict[str, bool]:
    """The compiler options for a program compiled for ``platform`` ('cpu', 'gpu', ...)."""
    return dict(CPU_OPTIONS) if platform == "cpu" else {}


def filter_jit(fn: Callable) -> Callable:
    """``eqx.filter_jit(fn)`` compiled with the options of JAX's default backend; same call."""
    jitted = {}

    @functools.wraps(fn)
    def call(*args, **kwargs):
        platform = jax.default_backend()
        if platform not in jitted:
            jitted[platform] = eqx.filter_jit(fn, compiler_options=compiler_options(platform))
        return jitted[platform](*args, **kwargs)

    return call
