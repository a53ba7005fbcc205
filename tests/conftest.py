"""Shared fixtures, and the compile mode of the suite.

The suite is compile-bound: most tests compile a few small programs and run them once.
So the tests' own process compiles with LLVM at optimisation level 0
(``--xla_backend_optimization_level=0``, appended to any ``XLA_FLAGS`` already set): the
HLO, and with it every operation and its order, is the one a user gets; only the machine
code is less optimised. Measured on the 2-core CPU (2026-11-23): tests/test_scan_paths.py
(15 of its tests) 78 -> 43 s, tests/test_tasks.py + tests/test_fit.py 211 -> 150 s.
Speed is measured by the benchmarks, never here. The processes that tests start inherit
the flag; tests/test_fit_processes.py and tests/test_fit_devices.py, which set
``XLA_FLAGS`` themselves, add it to theirs (the two-process test: 79 -> 39 s).

JAX's caches are cleared after a test that leaves the worker holding more than
``MAPS_LIMIT`` memory maps (``release_compiled_programs``): every compiled XLA:CPU
program holds about three maps of its code while JAX's caches keep it, a fit test leaves
several hundred (tests/test_fit.py reached 18,600 maps after 33 tests), and a worker
crossing the kernel's ``vm.max_map_count`` (65,530) segfaults in its next compile: that
was the crash of a worker late in full runs. Clearing after every test instead made the
suite take about half as long again (tests sharing a program compile it anew). A
persistent compilation cache per worker lets a test that compiles what an earlier one
did (a run, its interrupted copy, its resumption) read it from disk.

The suite keeps JAX's single CPU device (``JAX_NUM_CPU_DEVICES=1``, inherited by the
processes tests start; jaxrnn would make one per core): each test's numbers are then
those of one device whatever machine runs it, and two workers on two cores do not each
split their batches over both. The tests of several devices set their own count in the
processes they start (tests/test_cpu_devices.py, tests/test_fit_devices.py,
tests/test_fit_processes.py, the two-device benchmark tests).
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "1")  # JAX's single CPU device (below)

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


MAPS_LIMIT = 30_000
"""Memory maps of a worker above which JAX's caches are cleared (the kernel's limit: 65,530)."""


def release_if_many_maps() -> None:
    """Drop JAX's in-memory caches, and with them the compiled programs' memory maps, once
    this process holds more than ``MAPS_LIMIT`` (see the module's docstring). A test that
    compiles many programs in one function (a property-based test) calls it itself."""
    try:
        with open("/proc/self/maps") as f:
            maps = sum(1 for _ in f)
    except OSError:  # no /proc: clear every time
        maps = MAPS_LIMIT + 1
    if maps > MAPS_LIMIT:
        jax.clear_caches()


@pytest.fixture(autouse=True)
def release_compiled_programs():
    """After a test, ``release_if_many_maps``."""
    yield
    release_if_many_maps()


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """JAX's persistent compilation cache for the session (one folder per worker)."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
