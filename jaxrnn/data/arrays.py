"""Data as arrays: the ``Data`` record and its checks, packed rows' kind, long streams."""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from jaxrnn._checks import check_count, check_lengths


class Data(NamedTuple):
    """A data set as arrays: what the loaders and tasks return, and what ``fit``,
    ``evaluate`` and ``predict`` take (as ``(inputs, targets[, lengths])`` too).

    Args:
        inputs: (N, T, F) sequences, or (N, U) vectors (``OneToMany``).
        targets: (N, ...): class ids or values, per sequence or per step.
        lengths: (N,) valid steps of each sequence padded to T (None: all T).
        segments: (N, T) int32 for packed rows (``jaxrnn.datasets.pack``): the segment of
            its row each step belongs to, -1 past the row's last segment.
    """

    inputs: Array
    targets: Array
    lengths: Array | None = None
    segments: Array | None = None

    @property
    def size(self) -> int:
        """Number of examples N."""
        return int(self.inputs.shape[0])


def as_data(data, name: str = "data") -> Data:
    """Accept ``(inputs, targets)``, ``(inputs, targets, lengths)``, a ``Data`` or packed
    rows (a ``jaxrnn.datasets.Packed``); check sizes.

    Raises ValueError/TypeError naming ``name`` for a wrong container, mismatched example
    counts, and lengths that are not integers in [0, T].
    """
    segments = None
    if hasattr(data, "segments") and not isinstance(data, Data):  # packed rows
        parts, segments = (data.inputs, data.targets, None), np.asarray(data.segments)
    elif isinstance(data, Data):
        parts, segments = tuple(data[:3]), data.segments
    elif isinstance(data, tuple | list) and len(data) in (2, 3):
        parts = tuple(data) + (None,) * (3 - len(data))
    else:
        got = f"a {type(data).__name__} of {len(data)}" if isinstance(data, tuple | list) else type(data).__name__
        raise TypeError(f"{name} must be (inputs, targets) or (inputs, targets, lengths), got {got}")
    if parts[0] is None or parts[1] is None:
        raise TypeError(f"{name}: inputs and targets must be arrays, got None")
    inputs, targets, lengths = (None if p is None else jnp.asarray(p) for p in parts)
    inputs = check_inputs(inputs, name)
    if targets.ndim < 1 or targets.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"{name}: inputs and targets must hold the same number of examples, "
            f"got {inputs.shape[0]} inputs and {targets.shape[0] if targets.ndim else 'scalar'} targets"
        )
    if lengths is not None:
        T = inputs.shape[1] if inputs.ndim == 3 else 0
        lengths = check_lengths(lengths, inputs.shape[0], T, name=f"{name}: lengths")
    if segments is not None:
        segments = check_segments(segments, inputs.shape[:2], name)
        if lengths is not None:
            raise ValueError(f"{name}: packed rows take no lengths (their segments say where each sequence lies)")
    return Data(inputs, targets, lengths, segments)


def packed_kind(data) -> str | None:
    """Packed rows (a ``jaxrnn.datasets.Packed``): whether their targets are per step
    ("steps") or one per sequence ("sequences"); None for other data."""
    if hasattr(data, "segments") and hasattr(data, "per_step"):
        return "steps" if data.per_step else "sequences"
    return None


def check_segments(segments, shape: tuple[int, int], name: str) -> Array:
    """Packed rows' segment ids, checked on the host: (N, T) integers, in each row 0, 1, ...
    in order (a step repeats its predecessor's id or adds one), then -1 to the row's end."""
    ids = np.asarray(segments)
    if ids.shape != tuple(shape) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name}: segments must be integers of shape {tuple(shape)}, got {ids.dtype} {ids.shape}")
    prev = np.concatenate([np.full((ids.shape[0], 1), -1), ids[:, :-1]], axis=1)
    used = ids >= 0
    ordered = np.where(used, (ids - np.maximum(prev, 0) <= 1) & (ids >= np.maximum(prev, 0)), True)
    first = np.where(used[:, :1], ids[:, :1] == 0, True)
    tail = ~used[:, :-1] <= ~used[:, 1:]  # once -1, -1 to the end
    if not (ordered.all() and first.all() and tail.all() and (ids >= -1).all()):
        raise ValueError(
            f"{name}: segments must number each row's segments 0, 1, ... in order and end in -1 "
            "(as jaxrnn.datasets.pack makes them)"
        )
    return jnp.asarray(ids, jnp.int32)


def check_inputs(inputs, name: str) -> Array:
    """``inputs`` as an array with a leading example axis and floating point values; the
    errors every entry point that takes data gives for them, prefixed with ``name``."""
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 2:
        raise ValueError(f"{name}: inputs must have a leading example axis and features, got shape {inputs.shape}")
    if not jnp.issubdtype(inputs.dtype, jnp.floating):
        raise TypeError(f"{name}: inputs must be floating point (one-hot encode ids), got dtype {inputs.dtype}")
    return inputs


def streams(sequence: Array, n_streams: int, window: int | None = None) -> tuple[Array, Array]:
    """Cut one long sequence into ``n_streams`` parallel streams for next-step prediction.

    Stream b is the b-th contiguous slice of the sequence, so consecutive time chunks of a
    batch continue each other. Fit them as
    ``TBPTT(Batches((inputs, targets), n_streams), k)``: the state is carried from chunk to chunk (stateful
    training, the character-level language-model setting).

    Args:
        sequence: one long sequence (N, ...), e.g. token ids (N,).
        n_streams: B, the parallel streams (the batch).
        window: cut L down to a multiple of it (the TBPTT window), if given.

    Returns:
        ``(inputs, targets)``, each (n_streams, L, ...), with ``targets[b, t] =
            inputs[b, t + 1]`` in the original order.
    """
    n_streams = check_count(n_streams, "n_streams")
    sequence = jnp.asarray(sequence)
    L = (sequence.shape[0] - 1) // n_streams
    if window is not None:
        L = (L // window) * window
    if L < 1:
        raise ValueError(f"sequence of length {sequence.shape[0]} is too short for {n_streams} streams")
    inputs = sequence[: n_streams * L].reshape(n_streams, L, *sequence.shape[1:])
    targets = sequence[1 : n_streams * L + 1].reshape(n_streams, L, *sequence.shape[1:])
    return inputs, targets
