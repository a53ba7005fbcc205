"""Data as arrays: the ``Data`` record, epoch batch orders, long streams.

Below both ``tasks`` (which make data) and ``train`` (which consumes it).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from jaxrnn._checks import check_count, check_lengths


class Data(NamedTuple):
    """``inputs`` (N, T, F) or (N, U), ``targets`` (N, ...), optional ``lengths`` (N,)."""

    inputs: Array
    targets: Array
    lengths: Array | None = None

    @property
    def size(self) -> int:
        """Number of examples N."""
        return int(self.inputs.shape[0])


def as_data(data, name: str = "data") -> Data:
    """Accept ``(inputs, targets)``, ``(inputs, targets, lengths)`` or a ``Data``; check sizes.

    Raises ValueError/TypeError naming ``name`` for a wrong container, mismatched example
    counts, and lengths that are not integers in [0, T].
    """
    if isinstance(data, Data):
        parts = tuple(data)
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
    return Data(inputs, targets, lengths)


def check_inputs(inputs, name: str) -> Array:
    """``inputs`` as an array with a leading example axis and floating point values; the
    errors every entry point that takes data gives for them, prefixed with ``name``."""
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 2:
        raise ValueError(f"{name}: inputs must have a leading example axis and features, got shape {inputs.shape}")
    if not jnp.issubdtype(inputs.dtype, jnp.floating):
        raise TypeError(f"{name}: inputs must be floating point (one-hot encode ids), got dtype {inputs.dtype}")
    return inputs


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


def streams(sequence: Array, n_streams: int, window: int | None = None) -> tuple[Array, Array]:
    """Cut one long sequence into ``n_streams`` parallel streams for next-step prediction.

    Returns ``(inputs, targets)`` of shape (n_streams, L) with ``targets[b, t] =
    inputs[b, t + 1]`` in the original order: stream b is the b-th contiguous slice of
    the sequence, so consecutive time chunks of a batch continue each other. Fit them
    as ``TBPTT((inputs, targets), k)`` with ``batch_size=n_streams``: the state is carried from chunk to
    chunk (stateful training, the character-level language-model setting).
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
