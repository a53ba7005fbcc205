"""Training data as batches made on the host: any iterable of ``(inputs, targets[, lengths])``."""

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from jaxrnn._checks import check_count
from jaxrnn.data.arrays import Data, as_data


class HostBatches:
    """Training data as an iterable of host batches, each ``(inputs, targets)`` or
    ``(inputs, targets, lengths)`` of numpy (or torch, or JAX) arrays.

    Args:
        batches: a re-iterable (a list, a PyTorch ``DataLoader``, a Grain ``DataLoader``:
            ``iter()`` is called once per epoch), a function returning a fresh iterator
            (called once per epoch), or a one-shot iterator such as a generator (then
            ``epochs`` must be 1).
        prefetch: batches read ahead of the one training, by a background thread (>= 1).

    Every batch must have the first batch's shapes past the batch axis (one compiled
    update; pad sequences to a common T and pass lengths); the last batch may be smaller.
    The order and the batches are the iterable's (shuffle in the loader; ``Batches`` is
    for arrays in memory). ``key`` still drives dropout, so the same batches in the
    same order and the same key give the same run. ``ModelCheckpoint(resume=True)``
    continues bit for bit when the iterable yields the same batches in the same order
    each epoch: the batches of the interrupted epoch already trained on are read again
    and skipped.
    """

    def __init__(self, batches: Iterable | Callable[[], Iterator], *, prefetch: int = 2):
        check_count(prefetch, "prefetch")
        if not (callable(batches) or isinstance(batches, Iterable)):
            raise TypeError(
                f"batches must be an iterable of (inputs, targets[, lengths]) batches or a function returning "
                f"an iterator, got {type(batches).__name__}"
            )
        self.batches, self.prefetch = batches, prefetch
        self.one_shot = isinstance(batches, Iterator)
        self._first: Data | None = None
        self._iterator: Iterator | None = None
        self._spent = False  # a one-shot iterator's pass has been handed out

    @property
    def length(self) -> int | None:
        """Batches per epoch, or None where the iterable does not say."""
        try:
            return len(self.batches)
        except TypeError:
            return None

    def iterator(self, name: str = "data") -> Iterator:
        """A fresh pass over the batches (a one-shot iterator: its only pass, once; a second
        is an error naming ``name``, as ``check_fresh`` gives it)."""
        if self.one_shot:
            self.check_fresh(name)
            self._spent = True
            return self.batches if self._iterator is None else self._iterator
        return iter(self.batches() if callable(self.batches) else self.batches)

    def check_fresh(self, name: str = "data") -> None:
        """ValueError if this wraps a one-shot iterator that an earlier call has read (a
        second fit, evaluate or predict with it would see no batch): raised before any work."""
        if self._spent:
            raise ValueError(
                f"{name}: this HostBatches wraps a one-shot iterator (a generator) that an earlier fit, evaluate or "
                "predict has read: give each call a new one, or pass a re-iterable (a list, a DataLoader) or a "
                "function that returns a new iterator"
            )

    def first(self) -> Data:
        """The first batch, checked (read once; a one-shot iterator keeps it for its first pass)."""
        if self._first is None:
            it = self.batches if self.one_shot else self.iterator()  # peeking spends no one-shot pass
            try:
                batch = next(it)
            except StopIteration:
                raise ValueError("data: HostBatches holds no batch") from None
            self._first = as_data(host_arrays(batch), "data: batch 0")
            if self.one_shot:
                self._iterator = _chain(batch, it)
        return self._first


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def host_arrays(batch):
    """A batch's parts as numpy arrays (torch tensors included), lengths as int32."""
    if not isinstance(batch, tuple | list):
        return batch  # as_data names the wrong container
    return tuple(None if a is None else np.asarray(a) for a in batch)
