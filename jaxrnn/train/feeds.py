"""Where fit's batches come from, epoch by epoch: arrays on the device, or host batches streamed in.

``fit``'s loop asks an epoch for the next ``n`` updates (``Epoch.take``) and gets the
arrays the block of updates reads, the examples' indices into them, the TBPTT windows
and the real sequences each update starts. Two feeds:

- ``OnDevice``: the whole data set lives on the device (``fit(model, (x, y))``); an
  epoch is a plan of indices drawn on the host (``plans.Sequences`` / ``Windows``), and
  every block reads the same device arrays.
- ``Streamed``: ``fit(model, HostBatches(loader))``: batches come from any iterable on
  the host (a generator, a PyTorch ``DataLoader``, a Grain loader), for data that does
  not fit in device memory or is made on the fly. A background thread reads the
  iterable ``prefetch`` batches ahead (the host's work overlaps training; the thread
  calls no JAX), the training thread checks and places them; a block's batches are joined on the device into one array
  of ``steps_per_execution`` batches (zeros where the epoch ends early), so the block
  compiles once.
"""

import queue
import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.data.arrays import Data, as_data
from jaxrnn.data.host import HostBatches, host_arrays
from jaxrnn.train.plans import Plan

_END = object()
BLOCK_BYTES = 64 * 2**20
"""A block of streamed batches holds at most about this much (its batches are joined on
the device, so a block of K batches costs K batches of memory), and at most 32 batches:
the default ``steps_per_execution`` for ``HostBatches`` is ``BLOCK_BYTES`` over a batch's
bytes. Measured (GRU H 4, batches of 4 MiB, 512 of them, 2-core CPU): peak resident
memory 1129 MiB at 32 batches a block, 728 MiB at 4, the same as a run of 8 batches."""


def stream_block(first: Data) -> int:
    """Default updates per device call for batches like ``first``."""
    size = sum(a.nbytes for a in first if a is not None)
    return max(1, min(32, BLOCK_BYTES // max(1, size)))


def check_like(data: Data, first: Data, index: int) -> Data:
    """``data`` must have ``first``'s shapes past the batch axis and its dtypes."""
    for name, a, b in zip(Data._fields, data, first):
        if (a is None) != (b is None) or (a is not None and (a.shape[1:] != b.shape[1:] or a.dtype != b.dtype)):
            got = None if a is None else (a.shape, str(a.dtype))
            want = None if b is None else (("N", *b.shape[1:]), str(b.dtype))
            raise ValueError(f"data: batch {index}: {name} must be like batch 0's {want}, got {got}")
    if data.size > first.size:
        raise ValueError(f"data: batch {index} holds {data.size} examples, more than batch 0's {first.size}")
    return data


class OnDevice:
    """The whole data set on the device; an epoch is a plan of indices into it, drawn on the
    host from ``order(epoch)`` (n_batches, batch_size) and every example's ``lengths``."""

    def __init__(self, source, device_data, order: Callable[[int], np.ndarray], lengths: np.ndarray):
        self.source, self.device_data, self.order, self.lengths = source, device_data, order, lengths

    def epoch(self, number: int, start: int) -> "PlannedEpoch":
        """Epoch ``number``'s plan (the loop resumes it at update ``start`` by itself)."""
        return PlannedEpoch(self.source.plan(self.order(number), self.lengths), self.device_data)


class PlannedEpoch:
    """An epoch of an on-device plan."""

    def __init__(self, plan: Plan, device_data):
        self.plan, self.device_data, self.length = plan, device_data, len(plan)

    def finished(self, update: int) -> bool:
        """Whether every update of the epoch has run (``update``: how many have)."""
        return update >= self.length

    def take(self, start: int, n: int):
        """Updates ``start`` to ``start + n`` (fewer at the epoch's end): ``(data, idx, window, real)``."""
        end = min(start + n, self.length)
        p = self.plan
        return self.device_data, p.idx[start:end], p.window[start:end], p.real[start:end]

    def close(self) -> None:
        """Nothing to release."""


class Streamed:
    """Batches of a ``HostBatches`` streamed to the device, ``block`` of them per device call."""

    def __init__(self, batches: HostBatches, rows: int, block: int, put: Callable):
        self.batches, self.rows, self.block, self.put = batches, rows, block, put
        first = batches.first()
        zero = lambda a: None if a is None else np.zeros((rows, *a.shape[1:]), a.dtype)  # noqa: E731
        self.empty = put(Data(*(zero(a) for a in first)))

    def epoch(self, number: int, start: int) -> "StreamedEpoch":
        """A pass over the batches, the first ``start`` of them skipped (a resume)."""
        return StreamedEpoch(self, start)


class StreamedEpoch:
    """One pass over the host batches, read ahead by a background thread."""

    def __init__(self, feed: Streamed, skip: int):
        self.feed, self.exhausted, self.length, self.taken = feed, False, feed.batches.length, skip
        self.queue: queue.Queue = queue.Queue(maxsize=feed.batches.prefetch)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(skip,), daemon=True)
        self.thread.start()

    def _read(self, skip: int) -> None:
        """The reader thread: the iterable's batches as numpy arrays, ``prefetch`` ahead.

        It touches no JAX: checking a batch and placing it on the device happen in the
        training thread (``_place``), so JAX runs in one thread only."""
        try:
            for i, batch in enumerate(self.feed.batches.iterator()):
                if self.stopped.is_set():
                    return
                if i >= skip:
                    self.queue.put((i, host_arrays(batch)))
            self.queue.put(_END)
        except BaseException as e:  # noqa: BLE001 - raised again in the training thread
            self.queue.put(e)

    def _place(self, i: int, batch) -> tuple:
        """Batch ``i`` checked against the first, padded to the block's rows, on the device."""
        first, rows = self.feed.batches.first(), self.feed.rows
        data = check_like(as_data(batch, f"data: batch {i}"), first, i)
        real = data.size
        if real < rows:  # the last, smaller batch: padded rows have weight 0
            data = Data(*(None if a is None else _pad_rows(np.asarray(a), rows) for a in data))
        return self.feed.put(data), real

    def finished(self, update: int) -> bool:
        """Whether the iterable has ended and every batch it gave has been trained on."""
        return self.exhausted and update >= self.taken

    def take(self, start: int, n: int):
        """The next ``n`` batches (fewer at the epoch's end; None once it has ended)."""
        got = []
        while len(got) < n and not self.exhausted:
            item = self.queue.get()
            if item is _END:
                self.exhausted = True
            elif isinstance(item, BaseException):
                self.exhausted = True
                raise item
            else:
                got.append(self._place(*item))
        self.taken += len(got)
        if not got:
            return None
        rows, k = self.feed.rows, self.feed.block
        parts = [d for d, _ in got] + [self.feed.empty] * (k - len(got))
        data = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
        idx = np.stack(
            [np.where(np.arange(rows) < real, j * rows + np.arange(rows), -1) for j, (_, real) in enumerate(got)]
        )
        return data, idx, np.zeros(len(got), np.int32), np.asarray([real for _, real in got])

    def close(self) -> None:
        """Stop reading (training ended inside the epoch)."""
        self.stopped.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([a, np.zeros((rows - a.shape[0], *a.shape[1:]), a.dtype)])
