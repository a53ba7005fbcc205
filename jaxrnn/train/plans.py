"""Epoch plans: where each update's examples come from, and the loss they carry.

``Sequences`` and ``Windows`` hold the training data on the device and plan an epoch on
the host as a list of updates, each named by its examples' indices and a window number; inside the
compiled block of updates it gathers those examples on the device and computes the
objective. ``Sequences`` gives one update per batch of whole sequences; ``Windows``
gives one update per truncated-BPTT window of a batch, the state carried from window to
window (one long stream cut by ``jaxrnn.streams`` is a batch of such windows).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from jaxrnn.data.arrays import Data
from jaxrnn.layers.segments import segment_flags
from jaxrnn.train.objective import Objective, lengths_mask
from jaxrnn.train.protocol import Forward


class Plan(NamedTuple):
    """An epoch's updates, on the host: example indices (U, rows) with -1 for padding slots,
    the window of each update (U,), and how many real sequences each update starts (U,)
    (counted once per batch, for the throughput)."""

    idx: np.ndarray
    window: np.ndarray
    real: np.ndarray

    def __len__(self) -> int:
        return len(self.window)


def _rows(order: np.ndarray, rows: int) -> np.ndarray:
    """Pad each batch of ``order`` (n_batches, batch_size) with -1 to ``rows`` columns."""
    return np.concatenate([order, np.full((order.shape[0], rows - order.shape[1]), -1)], axis=1)


def _safe(idx: Int[Array, " rows"]) -> tuple[Int[Array, " rows"], Array]:
    """Padding slots (-1) read example 0 with weight 0."""
    return jnp.where(idx < 0, 0, idx), (idx >= 0).astype(jnp.float32)


def _gather(a: Array, rows, weights: Array) -> Array:
    """``a[rows]`` with a padding slot's (weight 0) values zero: the example it reads may
    hold a NaN, which a weight of 0 keeps out of the loss but not out of the gradient
    (0 * NaN), and would make the batch's update be skipped."""
    taken = a[rows]
    if not jnp.issubdtype(taken.dtype, jnp.inexact):
        return taken
    real = weights.reshape(-1, *[1] * (taken.ndim - 1)) > 0
    return jnp.where(real, taken, jnp.zeros((), taken.dtype))


def no_constraint(a: Array) -> Array:
    """Leave an array's placement to XLA (one device)."""
    return a


class Sequences(NamedTuple):
    """One update per batch of whole sequences (many-to-one, many-to-many, decoders).

    ``rows``: examples per update (the batch padded to a multiple of the devices);
    ``constrain`` places a gathered batch (sharded across devices, or as it is).
    """

    rows: int
    forward: Forward
    objective: Objective
    constrain: Callable = no_constraint

    def device_data(self, data: Data) -> Data:
        """What ``loss`` reads: the data as they are."""
        return data

    def plan(self, order: np.ndarray, lengths: np.ndarray) -> Plan:
        """One update per batch of ``order`` (n_batches, batch_size)."""
        n = order.shape[0]
        return Plan(_rows(order, self.rows), np.zeros(n, np.int32), (order >= 0).sum(1))

    def init_carry(self, model) -> None:
        """Whole sequences carry nothing from one update to the next."""
        return None

    def loss(self, model, carry, data: Data, idx, window, key):
        """The objective on the batch at ``idx``: ``(value, (carry, sums))``."""
        return self.on_batch(model, carry, self.batch(data, idx, window), key)

    def batch(self, data: Data, idx, window) -> tuple[Data, Array]:
        """The examples at ``idx`` gathered and placed, and their weights (0: padding slot)."""
        safe, weights = _safe(idx)
        take = lambda a: None if a is None else self.constrain(_gather(a, safe, weights))  # noqa: E731
        return Data(*(take(a) for a in data)), self.constrain(weights)

    def on_batch(self, model, carry, batch: tuple[Data, Array], key):
        """The objective on a gathered batch (or on one device's rows of it):
        ``(value, (carry, sums))``."""
        (inputs, targets, lengths, segments), weights = batch
        valid = self.objective.valid(lengths, segments, inputs.shape[1]) if inputs.ndim == 3 else None
        logits = self.logits(model, Data(inputs, targets, lengths, segments), key)
        value, sums = self.objective(logits, targets, weights, valid, segments)
        return value, (carry, sums)

    def logits(self, model, batch: Data, key):
        """The forward pass on one batch; packed rows' ``segments`` go to it as a keyword."""
        extra = {} if batch.segments is None else {"segments": batch.segments}
        return self.forward(model, batch.inputs, batch.targets, batch.lengths, key, **extra)


class Padded(NamedTuple):
    """Sequences padded in time for the windows, with their (N, T_padded) mask of valid
    steps and, for packed rows, the steps where a segment starts."""

    inputs: Array
    targets: Array
    valid: Bool[Array, "N Tp"]
    resets: Bool[Array, "N Tp"] | None = None


class Windows:
    """Truncated BPTT: one update per window of k2 steps every k1 steps (``jaxrnn.TBPTT``).

    The model must carry state (``train.protocol.Stateful``). The state is reset to zero
    at each batch's first window; windows past every sequence of a batch hold no loss
    and are not planned. On packed rows the state also restarts at each segment's first
    step, inside a window or at its edge, so that a window may cross from one sequence
    (an episode) into the next. The state carried to the next window is the one this window's
    forward pass reached, whether or not its update was applied (a skipped update leaves
    the parameters that computed it); a sequence whose state holds a NaN or inf (a NaN in
    its inputs) restarts from the zero state.
    """

    def __init__(self, rows: int, T: int, k1: int, k2: int, objective: Objective, constrain: Callable = no_constraint):
        self.rows, self.T, self.objective, self.constrain = rows, T, objective, constrain
        self.geometry = geometry(T, k1, k2)

    def _key(self) -> tuple:
        return self.rows, self.T, self.geometry, self.objective, self.constrain

    def __eq__(self, other) -> bool:
        """Equal windows compile to the same update (``step.Update`` is compared by them)."""
        return isinstance(other, Windows) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def device_data(self, data: Data) -> Padded:
        """What ``loss`` reads: inputs, targets and the mask of valid steps (for packed rows
        with the segments' first steps), padded in time."""
        pad = lambda a: pad_time(a, self.geometry, self.T)  # noqa: E731
        if data.segments is not None:
            valid, resets = segment_flags(data.segments)
            return Padded(pad(data.inputs), pad(data.targets), pad(valid), pad(resets))
        lengths = jnp.full(data.size, self.T) if data.lengths is None else data.lengths
        return Padded(pad(data.inputs), pad(data.targets), pad(lengths_mask(lengths, self.T)))

    def plan(self, order: np.ndarray, lengths: np.ndarray) -> Plan:
        """For each batch of ``order``, its windows up to its longest sequence's end (``lengths``, host)."""
        idx, window, real = [], [], []
        rows = _rows(order, self.rows)
        for batch, padded in zip(order, rows):
            longest = lengths[batch[batch >= 0]].max()
            n_windows = max(1, -(-int(longest) // self.geometry.k1))
            idx += [padded] * n_windows
            window += range(n_windows)
            real += [int((batch >= 0).sum())] + [0] * (n_windows - 1)
        return Plan(np.stack(idx), np.asarray(window, np.int32), np.asarray(real))

    def init_carry(self, model):
        """The zero state of a batch of ``rows`` sequences."""
        return model.init_state(self.rows)

    def loss(self, model, carry, data: Padded, idx, window, key):
        """The objective of window ``window`` of the batch at ``idx``: ``(value, (carry, sums))``.

        The steps [0, k1) of the window advance the carried state (its value after them
        enters the next window, without gradient); the loss is that of the last k1 steps.
        """
        return self.on_batch(model, carry, self.batch(data, idx, window), key)

    def batch(self, data: Padded, idx, window) -> tuple[Padded, Array, Array]:
        """Window ``window`` of the sequences at ``idx``, gathered and placed, their weights
        (0: padding slot) and the window's number in every row (so that the whole batch
        splits by rows)."""
        safe, weights = _safe(idx)
        cols = window * self.geometry.k1 + jnp.arange(self.geometry.k2)
        take = lambda a: None if a is None else self.constrain(_gather(a, (safe[:, None], cols[None, :]), weights))  # noqa: E731
        return Padded(*(take(a) for a in data)), self.constrain(weights), self.constrain(jnp.full(idx.shape, window))

    def on_batch(self, model, carry, batch: tuple[Padded, Array, Array], key):
        """The objective of a gathered window (or of one device's rows of it):
        ``(value, (carry, sums))``."""
        (inputs, targets, valid, resets), weights, window = batch
        k1 = self.geometry.k1
        part = lambda cut: {} if resets is None else {"resets": resets[:, cut]}  # noqa: E731
        zero = model.init_state(inputs.shape[0])
        first = lambda c: (window == 0).reshape(-1, *[1] * (c.ndim - 1))  # noqa: E731
        carry = jax.tree.map(lambda c, z: jnp.where(first(c), z, c), carry, zero)
        k_a, k_b = jax.random.split(key)
        logits_a, mid = model.run(inputs[:, :k1], carry, mask=valid[:, :k1], key=k_a, **part(slice(None, k1)))
        logits_b, _ = model.run(inputs[:, k1:], mid, mask=valid[:, k1:], key=k_b, **part(slice(k1, None)))
        logits = jnp.concatenate([logits_a, logits_b], axis=1)[:, -k1:]
        value, sums = self.objective(logits, targets[:, -k1:], weights, valid[:, -k1:])
        return value, (jax.lax.stop_gradient(restart_non_finite(mid, zero)), sums)


def restart_non_finite(state, initial):
    """``state`` with each sequence (row) whose state holds a NaN or inf set back to its
    ``initial`` state: a NaN in one sequence's inputs restarts that sequence, and no other."""
    leaves = jax.tree.leaves(state)
    if not leaves:
        return state
    rows = jnp.stack([jnp.all(jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1) for a in leaves]).all(0)
    return jax.tree.map(lambda a, z: jnp.where(rows.reshape(-1, *[1] * (a.ndim - 1)), a, z), state, initial)


class Geometry(NamedTuple):
    """Window geometry for a sequence of length T: to give every window one static shape,
    the time axis is padded with k2 - k1 skipped steps in front and skipped steps at the end
    up to a multiple of k1."""

    k1: int
    k2: int
    count: int
    front: int
    padded: int


def geometry(T: int, k1: int, k2: int) -> Geometry:
    """The windows covering T steps with stride k1 and length k2."""
    count = max(1, -(-T // k1))
    front = k2 - k1
    return Geometry(k1, k2, count, front, front + count * k1)


def pad_time(a: Array, w: Geometry, T: int) -> Array:
    """Pad axis 1 (time, length T) with zeros: ``w.front`` in front, the rest at the end."""
    pad = [(0, 0)] * a.ndim
    pad[1] = (w.front, w.padded - w.front - T)
    return jnp.pad(a, pad)


def window(a: Array, i, w: Geometry) -> Array:
    """Window i (possibly traced) of a padded array: steps [i*k1, i*k1 + k2) of axis 1."""
    return jax.lax.dynamic_slice_in_dim(a, i * w.k1, w.k2, axis=1)
