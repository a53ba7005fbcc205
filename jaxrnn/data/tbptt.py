"""Truncated BPTT windows: an update every k1 steps, backpropagating k2 >= k1 steps.

The update at time t (a multiple of k1) differentiates the losses of steps
[t - k1, t) through the steps [t - k2, t) only: the state entering that window is a
constant. Consecutive windows overlap by k2 - k1 steps; the state entering the next
window is the one reached k1 steps into this one. ``k1 = k2 = k`` is plain TBPTT(k):
chunks of k steps, state carried across chunks without gradient; ``k = T`` is full BPTT.
"""

from jaxrnn._checks import check_count
from jaxrnn.data.arrays import Data
from jaxrnn.data.batches import Batches


class TBPTT:
    """Sequence data trained by truncated BPTT: pass it to ``fit`` as ``data``.

    Each batch of sequences is cut into windows: an update every ``k1`` steps,
    backpropagating the last ``k2`` steps (the k1 updated ones and the k2 - k1 before
    them). The model carries its state across a batch's windows (``ManyToMany``, or a
    model of your own with the ``Stateful`` protocol), reset to zero at the batch's first
    window; windows past every sequence of a batch are not run. A window whose update is
    skipped as non-finite still carries its state on; a sequence whose state is NaN or
    inf (a NaN in its inputs) restarts from zero. ``k1 = k2 = T`` is full BPTT. One long
    stream cut by ``jaxrnn.streams`` into n streams and batched by ``Batches(..., n)``
    carries the state through the whole stream. On packed rows (``jaxrnn.datasets.pack`` with
    targets per step) the state also restarts at each sequence's first step, so a window
    may cross from one sequence (an episode) into the next.

    Args:
        data: ``Batches`` of sequences (inputs (N, T, F)), or their arrays
            ``(inputs, targets[, lengths])`` or packed rows for ``Batches(data)``: 32 a
            batch, shuffled (not ``HostBatches``: the windows are planned on the whole
            arrays).
        k1: steps between updates.
        k2: steps each update backpropagates through, at least ``k1`` (default ``k1``:
            chunks of k1 steps, the state carried between them without gradient).

    Example: ``fit(model, TBPTT(Batches((x, y), 16), 50), key=key, loss="cross_entropy")``.
    """

    def __init__(self, data, k1: int, k2: int | None = None):
        self.k1 = check_count(k1, "TBPTT k1")
        self.k2 = self.k1 if k2 is None else check_count(k2, "TBPTT k2")
        if self.k2 < self.k1:
            raise ValueError(f"TBPTT needs k2 >= k1 (backpropagate at least the updated steps), got k1={k1}, k2={k2}")
        if not isinstance(data, Batches | Data | tuple | list):
            raise TypeError(
                f"TBPTT needs the data as Batches or arrays (inputs, targets[, lengths]), inputs (N, T, F), got a "
                f"{type(data).__name__} (the windows are planned on the whole arrays: HostBatches cannot be cut)"
            )
        self.batches = data if isinstance(data, Batches) else Batches(data)
        if self.batches.packed == "sequences":
            raise ValueError("TBPTT on packed rows needs targets per step, got one per sequence")
        self.data: Data = self.batches.data
        if self.data.inputs.ndim != 3:
            raise ValueError(f"TBPTT needs sequence inputs (N, T, F), got shape {tuple(self.data.inputs.shape)}")

    def __repr__(self) -> str:
        return f"TBPTT({self.batches!r}, {self.data.inputs.shape[1]} steps, k1={self.k1}, k2={self.k2})"
