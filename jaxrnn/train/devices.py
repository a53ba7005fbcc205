"""Where fit's arrays live: one device, several devices of one process, or several processes.

- One device: arrays stay as they are.
- Several devices (``jax.device_count() > 1``): a 1-D mesh named ``data``; the model and
  optimizer state are replicated, each gathered batch is sharded along its rows.
- Several processes (``jax.distributed``): the same mesh spans every process's devices;
  each process passes ``fit`` only its own shard of the data (all shards of one size),
  which becomes one global array sharded by examples
  (``jax.make_array_from_process_local_data``): global example ``i`` is row
  ``i - p * n_local`` of process p's shard, so the epoch order is the one a single
  process would draw for the concatenated data, and a gathered batch pulls each of its
  rows from the process that holds it. Only process 0 writes checkpoints and logs.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrnn._checks import check_count
from jaxrnn.cells import Cell
from jaxrnn.data import Data
from jaxrnn.train.plans import no_constraint

MIN_WORK = 1024 * 28
"""fit's default placement gives each device at least this much work an update, in rows x
hidden units x steps (``rows_per_device``): below it, the devices' meeting once an
update (about 0.2-0.3 ms here) costs what splitting the work saves, or more: LSTM on
this 2-core CPU, below it 0.59-0.96x in 7 of 9 shapes (T 5-50), from it on 1.04-1.64x in
all 10 (``benchmarks/results/fit_split``; docs/performance.md, "When it pays")."""

MIN_ROWS = 8
"""...and at least this many rows (the fewest measured to gain)."""


def rows_per_device(hidden_size: int | None, steps: int) -> int:
    """The fewest rows of a batch a device gets from fit's default placement: ``MIN_WORK``
    rows x hidden units x steps, at least ``MIN_ROWS``. A model without jaxrnn cells
    (hidden size None) counts as H 64."""
    return max(MIN_ROWS, -(-MIN_WORK // ((hidden_size or 64) * steps)))


def widest_cell(model) -> int | None:
    """The largest ``hidden_size`` among ``model``'s jaxrnn cells; None if it has none."""
    cells = jax.tree.leaves(model, is_leaf=lambda x: isinstance(x, Cell))
    return max((c.hidden_size for c in cells if isinstance(c, Cell)), default=None)


class Placement:
    """Where ``fit`` puts the data, the model and the optimizer state: pass it whole as
    ``fit(..., placement=)``.

    Args:
        devices: how many devices, or None (the default) for every device of every
            process. With more than one, each batch is split by rows across them (data
            parallel: each device computes its rows' share of the gradient, and the
            devices add theirs once an update) and the model and optimizer state are
            replicated; the batch is padded to a multiple of the devices with weight-0
            rows. Dropout then draws each device's masks from the key and the device's
            place in the mesh: a run on n devices is the same in any process, and differs
            from one on another number of devices by its dropout masks. ``devices=1`` keeps to
            JAX's default device whatever else there is. A number below the device count
            takes the first devices of ``jax.devices()``, in one process only.
    """

    def __init__(self, devices: int | None = None):
        available = jax.device_count()
        n_dev = available if devices is None else check_count(devices, "Placement devices", 1, available)
        if 1 < n_dev < available and jax.process_count() > 1:
            raise ValueError(
                f"Placement devices={devices}: with {jax.process_count()} processes, use every device (None) or 1"
            )
        self.n_dev = n_dev
        self.processes = jax.process_count() if n_dev > 1 else 1
        self.writer = jax.process_index() == 0
        if n_dev == 1:
            self.constrain = self.replicate = no_constraint
            self.mesh = None
            return
        self.mesh = mesh = jax.make_mesh(
            (n_dev,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:n_dev]
        )
        self.replicated, self.by_rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
        self.constrain, self.replicate = Constraint(self.by_rows), Constraint(self.replicated)

    @classmethod
    def for_batch(cls, batch_size: int, hidden_size: int | None, steps: int) -> "Placement":
        """``fit``'s default: every device when there are several processes; in one, as
        many devices as give each enough of a batch of ``batch_size`` rows of ``steps``
        steps through cells of ``hidden_size`` units to pay for the split
        (``rows_per_device``: at T 28, 8 rows at H 128, 16 at H 64, 32 at H 32), one
        device when no split does."""
        if jax.process_count() > 1:
            return cls()
        return cls(devices=max(1, min(jax.device_count(), batch_size // rows_per_device(hidden_size, steps))))

    def __repr__(self) -> str:
        return f"Placement(devices={self.n_dev})"

    def state(self, tree):
        """``tree``'s arrays replicated on every device (the same values in every process)."""
        if self.n_dev == 1:
            return tree
        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.tree.map(self._replicated, arrays), static)

    def _replicated(self, a):
        if self.processes == 1 or jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.device_put(a, self.replicated)
        return jax.device_put(np.asarray(a), self.replicated)

    def data(self, tree):
        """Training or validation arrays: replicated in one process; in several, the
        process-local shards joined into global arrays sharded by examples."""
        if self.processes == 1:
            return self.state(tree)
        return jax.tree.map(lambda a: jax.make_array_from_process_local_data(self.by_rows, np.asarray(a)), tree)

    def global_lengths(self, data: Data, steps: int) -> np.ndarray:
        """Every example's length (all processes' shards, in order), for planning on the host."""
        local = np.full(data.size, steps) if data.lengths is None else np.asarray(data.lengths)
        return local if self.processes == 1 else np.asarray(multihost_utils.process_allgather(local, tiled=True))

    def global_size(self, data: Data, name: str) -> int:
        """The number of examples over all processes; ValueError if the shards' sizes differ."""
        if self.processes == 1:
            return data.size
        sizes = np.asarray(multihost_utils.process_allgather(np.asarray([data.size])))
        if len(set(sizes.ravel().tolist())) != 1:
            raise ValueError(f"{name}: every process must hold a shard of the same size, got sizes {sizes.ravel()}")
        if data.size % jax.local_device_count():
            raise ValueError(
                f"{name}: a process's shard ({data.size} examples) must split evenly over its "
                f"{jax.local_device_count()} devices"
            )
        return int(sizes.sum())

    def host(self, tree):
        """``tree``'s arrays as numpy on this host (every process must call it: a collective)."""
        return jax.tree.map(_to_host, tree)

    def local(self, tree):
        """``tree`` with its arrays as ordinary arrays of this process (what fit returns)."""
        if self.processes == 1:
            return tree
        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.tree.map(lambda a: jnp.asarray(_to_host(a)), arrays), static)


class Constraint(NamedTuple):
    """``jax.lax.with_sharding_constraint(a, sharding)``, compared by its sharding: the
    programs ``fit`` compiles with it are found again by a later fit on the same devices."""

    sharding: NamedSharding

    def __call__(self, a):
        return jax.lax.with_sharding_constraint(a, self.sharding)


def _to_host(a):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.asarray(_to_host(jax.random.key_data(a))), impl=jax.random.key_impl(a))
    if a.is_fully_addressable:
        return np.asarray(a)
    if a.is_fully_replicated:
        return np.asarray(a.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(a, tiled=True))
