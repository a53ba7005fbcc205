"""Arrays in memory, trained in batches: ``fit``'s data source for arrays."""

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import check_count
from jaxrnn.data.arrays import Data, as_data, packed_kind


class Batches:
    """Arrays in memory, trained in batches drawn in a new order every epoch: what ``fit``
    makes of plain arrays, ``Batches(data)``.

    The whole data set is placed on the device once; each update gathers its batch there.
    A ``batch_size`` above the number of examples is one batch of all of them (as in Keras
    and PyTorch); the last batch of an epoch is padded with examples of weight 0, so every
    update has one shape and compiles once.

    Args:
        data: ``(inputs, targets[, lengths])`` arrays, inputs (N, T, F) or (N, F), a
            ``Data``, or packed rows (``jaxrnn.datasets.pack``).
        batch_size: examples per update.
        shuffle: draw a new order every epoch from ``fit``'s key (else the data's order).

    Example: ``fit(model, Batches((x, y), batch_size=64), key=key)``.
    """

    def __init__(self, data, batch_size: int = 32, *, shuffle: bool = True):
        if isinstance(data, Batches):
            raise TypeError("data: already Batches; give its arrays (Batches(data.data, ...))")
        self.batch_size = check_count(batch_size, "batch_size", 1)
        if not isinstance(shuffle, bool | np.bool_):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        self.packed = packed_kind(data)
        self.data: Data = as_data(data)

    def __repr__(self) -> str:
        order = "shuffled" if self.shuffle else "in order"
        return f"Batches({self.data.size} examples, batch_size={self.batch_size}, {order})"


def batch_indices(n: int, batch_size: int, key: PRNGKeyArray | None, epoch: int) -> np.ndarray:
    """Example indices for one epoch, (n_batches, batch_size), shuffled from ``key`` and ``epoch``.

    The last batch is padded with index -1 (a padded slot has weight 0): every batch
    has the same shape, so the train step compiles once.
    """
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
    n_batches = -(-n // batch_size)
    padded = np.full(n_batches * batch_size, -1)
    padded[:n] = order
    return padded.reshape(n_batches, batch_size)
