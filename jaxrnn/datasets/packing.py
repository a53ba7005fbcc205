"""Packing instead of padding: variable-length sequences laid end to end in dense rows.

A padded batch runs a full step of the scan for every padding step: JapaneseVowels pads
its 7-26 steps to 29, about half of every batch. ``pack`` places the sequences one after
another in rows of ``row_length`` steps instead, each row a few *segments*; the models
restart their state at each segment's first step (``resets``), so a segment computes
exactly what its sequence computes alone, and only the unused steps at the end of a row
are skipped. ``fit``, ``evaluate`` and ``predict`` take a ``Packed`` as they take padded
data, with the same loss.

Placement: first-fit decreasing (the longest sequence first, each into the first row
with room for it, a new row when none has): it never uses more than 11/9 of the fewest
rows possible plus one (Dosa 2007), and in practice fills rows to within a few percent.
Within a row the segments keep the order they were placed in.
"""

from typing import NamedTuple

import numpy as np

from jaxrnn._checks import check_count
from jaxrnn.data import Data


class Packed(NamedTuple):
    """Sequences packed into rows by ``pack``.

    ``inputs`` (R, L, F); ``targets`` (R, L, ...) or None: per step, each step's target
    where its sequence lies; per sequence, segment s's target at position s of its row;
    ``segments`` (R, L) int32: the segment of its row each step belongs to (0, 1, ... in
    order), -1 on the unused steps at a row's end. Where each original sequence went,
    (N,) each: ``row``, ``start`` (its first step), ``slot`` (its segment number),
    ``lengths``. ``steps``: the original padded length T; ``per_step``: the targets (and
    the model's outputs) are per step, not per sequence.
    """

    inputs: np.ndarray
    targets: np.ndarray | None
    segments: np.ndarray
    row: np.ndarray
    start: np.ndarray
    slot: np.ndarray
    lengths: np.ndarray
    steps: int
    per_step: bool

    @property
    def fill(self) -> float:
        """The share of the rows' steps that hold a sequence (1 - padding)."""
        return float(self.lengths.sum()) / self.segments.size

    def _places(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every real step: ``(sequence, its step, row, position in the row)``."""
        n = np.repeat(np.arange(len(self.lengths)), self.lengths)
        t = np.arange(len(n)) - np.repeat(np.cumsum(self.lengths) - self.lengths, self.lengths)
        return n, t, self.row[n], self.start[n] + t

    def unpack(self, outputs) -> np.ndarray:
        """Row outputs back in the original order and layout.

        Args:
            outputs: (R, L, ...) of the packed rows: per step (``per_step``: a
                ``ManyToMany``'s logits) or per segment (a ``ManyToOne``'s: segment s of a
                row at position s).

        Returns:
            (N, T, ...) with zeros after each sequence's end, or (N, ...).
        """
        outputs = np.asarray(outputs)
        if outputs.shape[:2] != self.segments.shape:
            raise ValueError(f"outputs must be (rows, row_length, ...) = {self.segments.shape}, got {outputs.shape}")
        if not self.per_step:
            return outputs[self.row, self.slot]
        n, t, r, p = self._places()
        out = np.zeros((len(self.lengths), self.steps, *outputs.shape[2:]), outputs.dtype)
        out[n, t] = outputs[r, p]
        return out


def _first_fit_decreasing(lengths: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, start)`` of each item: longest first, into the first row with room.

    A max-tree over the rows' free steps finds that row in O(log N)."""
    size = 1
    while size < len(lengths):
        size *= 2
    free = np.zeros(2 * size, np.int64)  # leaves: rows' free steps (unopened rows: capacity)
    free[size:] = capacity
    for i in range(size - 1, 0, -1):
        free[i] = max(free[2 * i], free[2 * i + 1])
    row, start = np.zeros(len(lengths), np.int64), np.zeros(len(lengths), np.int64)
    for item in np.argsort(-lengths, kind="stable"):
        need, i = lengths[item], 1
        while i < size:  # descend to the leftmost leaf with room
            i = 2 * i if free[2 * i] >= need else 2 * i + 1
        row[item], start[item] = i - size, capacity - free[i]
        free[i] -= need
        while i > 1:
            i //= 2
            free[i] = max(free[2 * i], free[2 * i + 1])
    return row, start


def pack(data, *, row_length: int | None = None, per_step: bool | None = None) -> Packed:
    """Pack variable-length sequences into dense rows (first-fit decreasing).

    Args:
        data: ``(inputs, targets, lengths)`` or a ``Data``: inputs (N, T, F), targets
            per sequence (N, ...) or per step (N, T, ...) or None, lengths (N,) in
            [1, T] (None: every sequence has T steps).
        row_length: steps per row, at least the longest sequence. Default: T. Longer
            rows leave less unused at their ends; a batch then holds fewer rows.
        per_step: whether the targets are per step; default: they are when they have
            the inputs' T as their second axis. Without targets, what ``unpack`` (and
            ``predict``) gives back: True for a ``ManyToMany``, False (default) for a
            ``ManyToOne``.

    Returns:
        A ``Packed``; ``fill`` is the share of its steps that hold data.
    """
    if isinstance(data, Data):
        inputs, targets, lengths = data.inputs, data.targets, data.lengths
    elif isinstance(data, tuple | list) and len(data) in (2, 3):
        inputs, targets, lengths = (*data, None)[:3]
    else:
        raise TypeError(f"data must be (inputs, targets, lengths) or a Data, got {type(data).__name__}")
    inputs = np.asarray(inputs)
    if inputs.ndim != 3 or not np.issubdtype(inputs.dtype, np.floating):
        raise ValueError(f"data: inputs must be floating point (N, T, F), got {inputs.dtype} {inputs.shape}")
    N, T = inputs.shape[:2]
    if N == 0:
        raise ValueError("data must hold at least one sequence, got none")
    lengths = np.full(N, T, np.int64) if lengths is None else np.asarray(lengths)
    integers = lengths.shape == (N,) and np.issubdtype(lengths.dtype, np.integer)
    if not integers or not 1 <= lengths.min() <= lengths.max() <= T:
        got = f"{lengths.dtype} {lengths.shape}" + (f" in [{lengths.min()}, {lengths.max()}]" if integers else "")
        raise ValueError(
            f"data: lengths must be {N} integers in [1, {T}] (an empty sequence packs into nothing), got {got}"
        )
    L = T if row_length is None else check_count(row_length, "row_length")
    if lengths.max() > L:
        raise ValueError(f"row_length must hold the longest sequence ({lengths.max()} steps), got {L}")
    if targets is not None:
        targets = np.asarray(targets)
        if targets.ndim < 1 or targets.shape[0] != N:
            raise ValueError(f"data: targets must have one entry per sequence ({N}), got shape {targets.shape}")
        if per_step is None:
            per_step = targets.ndim >= 2 and targets.shape[1] == T
    per_step = bool(per_step)
    row, start = _first_fit_decreasing(lengths.astype(np.int64), L)
    R = int(row.max()) + 1
    order = np.lexsort((start, row))  # sequences by row, then by position
    slot = np.zeros(N, np.int64)
    first_of_row = np.r_[True, row[order][1:] != row[order][:-1]]
    counter = np.arange(N) - np.maximum.accumulate(np.where(first_of_row, np.arange(N), 0))
    slot[order] = counter
    packed = Packed(
        np.zeros((R, L, inputs.shape[2]), inputs.dtype), None, np.full((R, L), -1, np.int32),
        row, start, slot, lengths.astype(np.int64), T, per_step,
    )  # fmt: skip
    n, t, r, p = packed._places()
    packed.inputs[r, p] = inputs[n, t]
    packed.segments[r, p] = slot[n]
    if targets is None:
        return packed
    if per_step:
        if targets.ndim < 2 or targets.shape[1] != T:
            raise ValueError(f"data: per-step targets must be (N, {T}, ...), got shape {targets.shape}")
        out = np.zeros((R, L, *targets.shape[2:]), targets.dtype)
        out[r, p] = targets[n, t]
    else:
        out = np.zeros((R, L, *targets.shape[1:]), targets.dtype)
        out[row, slot] = targets
    return packed._replace(targets=out)
