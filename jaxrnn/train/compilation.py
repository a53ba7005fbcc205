"""Seconds XLA spends compiling in this process: what ``fit`` reports as compiling.

A JAX monitoring listener, registered on the first call of ``seconds``, adds up the
durations of XLA's backend compilations (JAX's ``backend_compile_duration`` event; tracing
and lowering to MLIR are not counted). Compilations from other threads of the process
while ``fit`` runs are counted with its own.
"""

import functools
import threading

from jax import monitoring

EVENT = "/jax/core/compile/backend_compile_duration"
_total = [0.0]
_lock = threading.Lock()


def _add(event: str, duration: float, **kwargs) -> None:
    if event == EVENT:
        with _lock:
            _total[0] += duration


@functools.cache
def _listening() -> None:
    monitoring.register_event_duration_secs_listener(_add)


def seconds() -> float:
    """XLA's compile seconds in this process since the first call (which returns 0)."""
    _listening()
    return _total[0]
