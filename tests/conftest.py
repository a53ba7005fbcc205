"""Shared fixtures, and the compile mode of the suite.

The suite is compile-bound: most tests compile a few small programs and run them once.
So the tests' own process compiles with LLVM at optimisation level 0
(``--xla_backend_optimization_level=0``, appended to any ``XLA_FLAGS`` already set): the
HLO, and with it every operation and its order, is the one a user gets; only the machine
code is less optimised. Measured on the 2-core CPU (2026-11-23): tests/test_scan_paths.py
(15 of its tests) 78 -> 43 s, tests/test_tasks.py + tests/test_fit.py 211 -> 150 s.
Speed is measured by the benchmarks, never here. The processes that tests start inherit
the flag, except those of tests/test_fit_processes.py and tests/test_fit_devices.py, which
set ``XLA_FLAGS`` themselves and so compile at the default level.

No persistent compilation cache: with one per worker (it let a run, its interrupted
copy and its resumption compile once), a worker crashed in JAX's cache write
(``compilation_cache.put_executable_and_time``, a segmentation fault while serialising
fit's block for tests/test_tasks.py's France task) in two full runs of 2026-11-28, at
the same test; the test passes alone and after the streaming tests. Reported in the notes.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

CELL_KINDS = {  # every kind of cell: name -> (class, keyword arguments)
    "rnn": (jaxrnn.SimpleRNNCell, {}),
    "rnn_relu_ln": (jaxrnn.SimpleRNNCell, {"activation": "relu", "layer_norm": True}),
    "lstm": (jaxrnn.LSTMCell, {}),
    "lstm_ln": (jaxrnn.LSTMCell, {"layer_norm": True}),
    "gru": (jaxrnn.GRUCell, {}),
    "gru_ln": (jaxrnn.GRUCell, {"layer_norm": True}),
    "gru_before": (jaxrnn.ResetBeforeGRUCell, {}),
    "gru_before_ln": (jaxrnn.ResetBeforeGRUCell, {"layer_norm": True}),
}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def set_weights(module, **arrays):
    """Replace named array fields of an Equinox module."""
    names = list(arrays)
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], module, [jnp.asarray(arrays[n]) for n in names])


def key(i=0):
    return jax.random.PRNGKey(i)
