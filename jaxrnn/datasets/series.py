"""A univariate or multivariate series windowed for forecasting, split in time and
standardised with statistics of the training part only."""

import csv
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxrnn._checks import check_count, check_file
from jaxrnn.data import Data
from jaxrnn.datasets.sequences import Scaler, chronological_split, fit_scaler


def read_csv_columns(path: str | os.PathLike, columns: Sequence[str]) -> np.ndarray:
    """The named columns of a CSV file with a header row, as float64.

    Args:
        path: the file.
        columns: the header names to read, in the order wanted.

    Returns:
        (rows, len(columns)) float64.

    Raises:
        ValueError: naming the file, for a column that is not in the header (the header's
            columns listed), a value that is not a number (its line named), no data rows.
    """
    check_file(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header row")
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"{path}: no column {missing}; the header has {header}")
        index = [header.index(c) for c in columns]
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[i]) for i in index])
            except (ValueError, IndexError):
                got = [row[i] if i < len(row) else "(missing)" for i in index]
                raise ValueError(f"{path}, line {line}: columns {list(columns)} must be numbers, got {got}") from None
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    return np.asarray(rows, np.float64)


class SeriesSplits(NamedTuple):
    """Windows of a series split in time: ``train``, ``validation``, ``test`` as ``Data``
    (inputs (N, window, C) float32, targets (N, 1) float32), the ``scaler`` fitted on the
    training part (``scaler.inverse`` takes predictions back to the series' units, on
    the target channel: ``target_scaler``), and each window's ``target_index`` into the
    series per part."""

    train: Data
    validation: Data
    test: Data
    scaler: Scaler
    target_scaler: Scaler
    target_index: tuple[np.ndarray, np.ndarray, np.ndarray]


def forecast_windows(
    series: np.ndarray,
    window: int,
    *,
    horizon: int = 1,
    target: int = 0,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    standardise: bool = True,
) -> SeriesSplits:
    """Windows of ``window`` steps of ``series``, each predicting channel ``target``
    ``horizon`` steps after its last step.

    The series is cut in time by ``split`` (``chronological_split``); a window belongs to
    the part its target falls in, so no target of a later part is ever a training target
    (a validation window's inputs may reach back into the training part: those values
    are known by then).

    Args:
        series: (T,) or (T, C).
        window: steps each input window holds.
        horizon: how far past a window's last step its target lies.
        target: the channel predicted.
        split: the train / validation / test fractions, in time order.
        standardise: standardise every channel by the training part's mean and standard
            deviation alone.

    Returns:
        A ``SeriesSplits``: ``train``, ``validation``, ``test`` (each a ``Data``: inputs
            (N, window, C), targets (N, 1)) and the scaling used.
    """
    x = np.asarray(series, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise ValueError(f"series must have shape (T,) or (T, C), got {np.shape(series)}")
    window, horizon = check_count(window, "window"), check_count(horizon, "horizon")
    if not 0 <= target < x.shape[1]:
        raise ValueError(f"target must be a channel in [0, {x.shape[1]}), got {target}")
    if np.isnan(x).any():
        raise ValueError("series holds NaN: fill or drop missing values first")
    parts = chronological_split(len(x), split)
    if len(parts) != 3:
        raise ValueError(f"split must give three fractions (train, validation, test), got {tuple(split)}")
    scaler = fit_scaler(x[parts[0]]) if standardise else Scaler(np.zeros(x.shape[1]), np.ones(x.shape[1]))
    z = scaler.transform(x)
    first = window + horizon - 1  # the first index with a full window before it
    out, indices = [], []
    for part in parts:
        t = np.arange(max(part.start, first), part.stop)
        if len(t) == 0:
            raise ValueError(f"a part of the series ({part.stop - part.start} steps) holds no window of {window} steps")
        starts = t - horizon + 1 - window
        inputs = np.stack([z[s : s + window] for s in starts]).astype(np.float32)
        out.append(Data(inputs, z[t, target : target + 1].astype(np.float32)))
        indices.append(t)
    target_scaler = Scaler(scaler.mean[target : target + 1], scaler.std[target : target + 1])
    return SeriesSplits(*out, scaler, target_scaler, tuple(indices))
