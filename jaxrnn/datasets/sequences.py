"""What every data set needs before ``fit``: ragged sequences padded with their lengths,
per-channel standardisation that ignores padding, and splits."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxrnn.data import Data


def pad_sequences(sequences: Sequence, *, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """A ragged list of sequences, each (T_i, F) or (T_i,), as ``(inputs, lengths)``.

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
    """The per-channel mean and standard deviation of ``inputs`` (N, T, F) or (T, F) over
    the valid steps only (t < lengths[n]): padding does not pull the mean to zero. A
    constant channel gets std 1. Fit it on the training part; transform every part with it."""
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
    """``scaler.transform(inputs)`` with the padding (t >= lengths) left at zero."""
    z = scaler.transform(inputs).astype(np.asarray(inputs).dtype)
    if lengths is not None:
        z[np.arange(z.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
    return z


def chronological_split(n: int, fractions: Sequence[float]) -> list[slice]:
    """Consecutive slices of ``range(n)`` in the given fractions, in time order (no
    shuffling: the later parts are the future of the earlier ones). Fractions must be
    positive and sum to at most 1; the last part takes what rounding leaves."""
    if not fractions or any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be positive and sum to at most 1, got {tuple(fractions)}")
    cuts = np.round(np.cumsum([0, *fractions]) * n).astype(int)
    cuts[-1] = n if abs(sum(fractions) - 1) < 1e-9 else cuts[-1]
    parts = [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    if any(p.stop <= p.start for p in parts):
        raise ValueError(f"{n} items are too few for the fractions {tuple(fractions)}: a part would be empty")
    return parts


def validation_split(data: Data, fraction: float, *, seed: int | None = None) -> tuple[Data, Data]:
    """``(train, validation)``: ``fraction`` of the examples held out. ``seed`` None holds
    out the last examples (as Keras's ``validation_split``); an int draws them at random
    (NumPy's ``default_rng(seed)``)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    n = data.size
    n_val = int(round(n * fraction))
    if not 0 < n_val < n:
        raise ValueError(f"{n} examples are too few to hold out {fraction} of them")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    train, val = np.sort(order[: n - n_val]), np.sort(order[n - n_val :])
    take = lambda idx: Data(*(None if a is None else np.asarray(a)[idx] for a in data))  # noqa: E731
    return take(train), take(val)
