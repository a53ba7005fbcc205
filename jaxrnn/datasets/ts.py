"""``.ts`` files of the UEA and UCR archives (sktime/aeon's format): multivariate series of
varying length with class labels, read into padded inputs with lengths.

A file is a header of ``@key value`` lines (``@dimensions``, ``@classLabel true a b c``,
``@timeStamps``, ``@missing`` ...), ``@data``, then one case per line: each dimension's
values separated by commas, the dimensions by colons, the class label last. Comment
lines start with ``#``.
"""

import os
from typing import NamedTuple

import numpy as np

from jaxrnn._checks import check_file
from jaxrnn.data import Data
from jaxrnn.datasets.sequences import pad_sequences


class Labelled(NamedTuple):
    """``data``: inputs (N, T_max, C) float32 zero-padded, targets (N,) int32 class ids,
    lengths (N,); ``classes``: the label of each class id."""

    data: Data
    classes: tuple[str, ...]


def read_ts(path: str | os.PathLike, *, missing: str = "error") -> Labelled:
    """A classification ``.ts`` file as padded inputs, lengths and class ids.

    Args:
        path: the file.
        missing: what a missing value (``?`` or ``NaN``) inside a series does: "error"
            (the default) names the file, line and dimension; "nan" keeps it as NaN (fill
            it before training: a NaN input step is not skipped, only padding is).

    Class ids follow the order of ``@classLabel`` in the header (sorted labels if the
    header lists none). Time-stamped files (``@timeStamps true``) and files without class
    labels are refused with a clear error.

    Returns:
        A ``Labelled``: ``data`` (inputs (N, T_max, C) float32 zero-padded, targets (N,)
            int32 class ids, lengths (N,)) and ``classes``, the label of each class id.
    """
    if missing not in ("error", "nan"):
        raise ValueError(f"missing must be 'error' or 'nan', got {missing!r}")
    header, cases, labels = {}, [], []
    check_file(path)
    with open(path) as f:
        in_data = False
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower() == "@data":
                    in_data = True
                    _check_header(path, header)
                elif line.startswith("@"):
                    key, _, value = line[1:].partition(" ")
                    header[key.lower()] = value.strip()
                else:
                    raise ValueError(
                        f"{path}, line {line_no}: expected a @key value header line or @data, got {line[:40]!r}"
                    )
                continue
            *dims, label = line.split(":")
            series = [_values(path, line_no, d, dim, missing) for d, dim in enumerate(dims)]
            if len({len(s) for s in series}) != 1:
                lengths = [len(s) for s in series]
                raise ValueError(f"{path}, line {line_no}: the dimensions have different lengths {lengths}")
            cases.append(np.stack(series, axis=1))
            labels.append(label.strip())
    if not in_data:
        raise ValueError(f"{path}: no @data line: not a .ts file")
    if not cases:
        raise ValueError(f"{path}: no cases after @data")
    n_dims = {c.shape[1] for c in cases}
    if len(n_dims) != 1:
        raise ValueError(f"{path}: cases have different numbers of dimensions {sorted(n_dims)}")
    declared = header["classlabel"].split()[1:]
    classes = tuple(declared) if declared else tuple(sorted(set(labels)))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"{path}: labels {unknown} are not among the declared @classLabel {list(classes)}")
    inputs, lengths = pad_sequences(cases)
    ids = np.asarray([classes.index(label) for label in labels], np.int32)
    return Labelled(Data(inputs, ids, lengths), classes)


def _check_header(path, header: dict) -> None:
    if header.get("timestamps", "false").lower() == "true":
        raise ValueError(f"{path}: time-stamped series (@timeStamps true) are not read; only plain value lists")
    if not header.get("classlabel", "false").lower().startswith("true"):
        raise ValueError(f"{path}: no class labels (@classLabel true ...): read_ts reads classification files")


def _values(path, line_no: int, d: int, text: str, missing: str) -> np.ndarray:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = np.asarray([np.nan if p in ("?", "NaN", "nan") else float(p) for p in parts], np.float32)
    except ValueError:
        bad = next(p for p in parts if not _is_number(p))
        raise ValueError(f"{path}, line {line_no}, dimension {d}: {bad!r} is not a number") from None
    if missing == "error" and np.isnan(values).any():
        raise ValueError(
            f"{path}, line {line_no}, dimension {d}: a missing value ('?'); pass missing='nan' to keep it as NaN"
        )
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
