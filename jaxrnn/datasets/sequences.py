"""What every data set needs before ``fit``: ragged sequences padded with their lengths,
per-channel standardisation that ignores padding, and splits."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxrnn.data import Data


def pad_sequences(sequences: Sequence, *, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """A ragged list of sequences, each (T_i, F) or (T_i,), as ``(inputs, lengths)``.

    Args:
        sequences: N arrays of (T_i, F) or (T_i,).
        dtype: the inputs' dtype.

    Returns:
        inputs (N, max T_i, F) with zeros after each sequence's end (F = 1 for 1-D
            sequences), lengths (N,) int32: pass both to ``fit`` as ``(inputs, targets, lengths)``.
    """
    arrays = [np.asarray(s, dtype=dtype) for s in sequences]
    if not arrays:
        raise ValueError("sequences must hold at least one sequence, got none")
    arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
    features = {a.shape[1:] for a in arrays}
    if any(a.ndim != 2 for a in arrays) or len(features) != 1:
        raise ValueError(
            f"sequences must all be (T_i, F) with one F (or 1-D), got shapes {sorted({a.shape for a in arrays})}"
        )
    lengths = np.asarray([len(a) for a in arrays], np.int32)
    inputs = np.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]), dtype)
    for row, a in zip(inputs, arrays):
        row[: len(a)] = a
    return inputs, lengths


class Scaler(NamedTuple):
    """Per-channel ``mean`` and ``std`` (F,): ``transform`` standardises, ``inverse`` undoes it."""

    mean: np.ndarray
    std: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` over the last axis."""
        return (np.asarray(x) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``z * std + mean``: back to the original units."""
        return np.asarray(z) * self.std + self.mean


def fit_scaler(inputs: np.ndarray, lengths: np.ndarray | None = None) -> Scaler:
    """The per-channel mean and standard deviation of ``inputs`` over the valid steps only
    (t < lengths[n]): padding does not pull the mean to zero. A constant channel gets std 1.
    Fit it on the training part; transform every part with it.

    Args:
        inputs: (N, T, F) or (T, F).
        lengths: (N,) valid steps of each sequence (None: all T).

    Returns:
        A ``Scaler`` (``mean``, ``std``, each (F,); ``transform(inputs)``).
    """
    x = np.asarray(inputs, np.float64)
    if lengths is not None:
        valid = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
        x = x[valid]  # (valid steps, F)
    x = x.reshape(-1, x.shape[-1])
    if np.isnan(x).any():
        raise ValueError("inputs hold NaN in their valid steps: fill or drop missing values first")
    std = x.std(0)
    return Scaler(x.mean(0), np.where(std > 0, std, 1.0))


def standardise(inputs: np.ndarray, lengths: np.ndarray | None, scaler: Scaler) -> np.ndarray:
    """``scaler.transform(inputs)`` with the padding (t >= lengths) left at zero.

    Args:
        inputs: (N, T, F).
        lengths: (N,) valid steps (None: all T).
        scaler: a ``fit_scaler`` result (from the training part).

    Returns:
        (N, T, F) standardised inputs.
    """
    z = scaler.transform(inputs).astype(np.asarray(inputs).dtype)
    if lengths is not None:
        z[np.arange(z.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
    return z


def chronological_split(n: int, fractions: Sequence[float]) -> list[slice]:
    """Consecutive slices of ``range(n)`` in the given fractions, in time order (no
    shuffling: the later parts are the future of the earlier ones).

    Args:
        n: the number of examples (steps of a series, say).
        fractions: positive, summing to at most 1; the last part takes what rounding leaves.

    Returns:
        One ``slice`` per fraction.
    """
    if not fractions or any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be positive and sum to at most 1, got {tuple(fractions)}")
    cuts = np.round(np.cumsum([0, *fractions]) * n).astype(int)
    cuts[-1] = n if abs(sum(fractions) - 1) < 1e-9 else cuts[-1]
    parts = [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    if any(p.stop <= p.start for p in parts):
        raise ValueError(f"{n} items are too few for the fractions {tuple(fractions)}: a part would be empty")
    return parts


def validation_split(
    data: Data, fraction: float, *, seed: int = 0, shuffle: bool = True, stratify: bool | None = None
) -> tuple[Data, Data]:
    """``(train, validation)``: ``fraction`` of the examples held out, drawn at random.

    Args:
        data: the examples (``Data`` or ``(inputs, targets[, lengths])``).
        fraction: the share held out, in (0, 1); ``round(N * fraction)`` examples.
        seed: the draw (NumPy's ``default_rng(seed)``): the same call gives the same split.
        shuffle: False holds out the last examples in order instead (for data in time
            order, where the validation part must be the future of the training part;
            Keras's ``validation_split`` does this always, and on files sorted by class,
            as the UCR/UEA archives are, its validation set holds one class only).
        stratify: hold out ``fraction`` of each class (largest remainders, so the total
            stays ``round(N * fraction)``; a class of one example stays in training).
            None: stratify when the targets are class ids, one integer per example.

    Returns:
        ``(train, validation)`` as ``Data`` of NumPy arrays, each in the original order.
    """
    if isinstance(data, tuple | list) and not isinstance(data, Data):
        data = Data(*data)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    n = int(np.shape(data.inputs)[0])
    n_val = int(round(n * fraction))
    if not 0 < n_val < n:
        raise ValueError(f"{n} examples are too few to hold out {fraction} of them")
    targets = np.asarray(data.targets)
    class_ids = targets.ndim == 1 and np.issubdtype(targets.dtype, np.integer)
    if stratify and not shuffle:
        raise ValueError("shuffle=False holds out the last examples: it cannot stratify (pass stratify=None)")
    if stratify and not class_ids:
        raise ValueError(
            f"stratify=True needs class-id targets (one integer per example), got shape {targets.shape} "
            f"and dtype {targets.dtype}"
        )
    rng = np.random.default_rng(seed)
    if not shuffle:
        held = np.arange(n - n_val, n)
    elif stratify or (stratify is None and class_ids):
        held = _stratified(targets, n_val, rng)
    else:
        held = rng.permutation(n)[:n_val]
    is_val = np.zeros(n, bool)
    is_val[held] = True
    take = lambda rows: Data(*(None if a is None else np.asarray(a)[rows] for a in data))  # noqa: E731
    return take(~is_val), take(is_val)


def _stratified(classes: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """``n_val`` indices drawn at random within each class, in proportion to its size."""
    labels, counts = np.unique(classes, return_counts=True)
    share = counts * n_val / len(classes)
    take = np.minimum(np.floor(share).astype(int), counts - 1)
    room = counts - 1 - take  # a class keeps one example for training
    for i in np.lexsort((counts, -(share - np.floor(share)))):  # largest remainders first, ties to small classes
        if take.sum() >= n_val:
            break
        if room[i] > 0:
            take[i], room[i] = take[i] + 1, room[i] - 1
    held = [rng.permutation(np.flatnonzero(classes == label))[:k] for label, k in zip(labels, take)]
    return np.concatenate(held)
