"""On import (the first line of ``jaxrnn/__init__.py``), jaxrnn splits JAX's CPU backend
into one device per usable core, so that ``fit`` splits each batch across the cores by
default (``jaxrnn.Placement``).

Why: XLA:CPU runs a recurrent loop's small GEMMs on one thread; one device per core lets
``fit`` give each core its rows of the batch (the row-MNIST LSTM gradient: 26.8 ms on
one core, 13.5 ms on two; ``python -m benchmarks.cpu_devices``). JAX's own default is a
single CPU device.

The count is JAX's process-wide setting (``jax_num_cpu_devices``), fixed when JAX's
backends start, so jaxrnn sets it only while it is still open:
- the user's own setting wins: ``JAX_NUM_CPU_DEVICES``, ``jax.config.update(
  "jax_num_cpu_devices", n)`` or ``--xla_force_host_platform_device_count`` in
  ``XLA_FLAGS`` (``JAX_NUM_CPU_DEVICES=1`` keeps JAX's single device);
- JAX already started (an array made before ``import jaxrnn``): JAX keeps its count.
Usable cores: the process's CPU affinity, capped by a cgroup v2 quota (``cpu.max``, a
container's CPU limit) when there is one.
"""

import math
import os

import jax

QUOTA = "/sys/fs/cgroup/cpu.max"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open(QUOTA) as f:
            quota, period = f.read().split()
    except (OSError, ValueError):
        return cores
    return cores if quota == "max" else max(1, min(cores, math.floor(int(quota) / int(period))))


def user_set() -> bool:
    """Whether the CPU device count is the user's (an environment variable or JAX's config)."""
    return jax.config.jax_num_cpu_devices != -1 or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""
    )


STARTED_FIRST = False
"""Whether JAX had started before ``import jaxrnn`` could set a device per core (and the
user had set no count): ``fit`` then says how to get them (``cores_left_idle``)."""


def one_device_per_core() -> None:
    """Set ``jax_num_cpu_devices`` to the usable cores, unless the user set a count or
    JAX's backends have started."""
    global STARTED_FIRST
    cores = usable_cores()
    if cores < 2 or user_set():
        return
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # JAX already started: its count stays
        STARTED_FIRST = True


def cores_left_idle() -> str | None:
    """Why ``fit`` has one CPU device where there are several cores, and what to do; None
    when that is not so, or the user chose the count."""
    if not STARTED_FIRST or jax.default_backend() != "cpu" or jax.device_count() > 1:
        return None
    return (
        f"fit runs on 1 CPU device though this process may use {usable_cores()} cores: JAX had started "
        "before `import jaxrnn` could make one device per core. Import jaxrnn before running any JAX "
        "operation, or set JAX_NUM_CPU_DEVICES (docs/performance.md, 'Using every core')"
    )


one_device_per_core()
