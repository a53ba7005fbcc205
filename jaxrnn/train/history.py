"""The record of a training run."""

import dataclasses
import math


@dataclasses.dataclass
class History:
    """What ``fit`` returns beside the model: every update's numbers, every epoch's metrics.

    A resumed run's history is the whole run's: the updates and epochs before the
    interruption, then the resumed ones; the epoch it resumed in counts its time before
    the interruption too (the time in between not).

    Attributes:
        loss: per update, the training loss of its batch.
        grad_norm: per update, the global gradient norm *before* clipping (the
            exploding-gradient signal).
        learning_rate: per update (NaN when the optimizer does not expose one, see
            ``fit``).
        finite: per update, False where it was skipped as non-finite.
        epochs: per epoch, a dict of metrics (``loss``, ``accuracy``, ``val_loss``,
            ``val_accuracy``, ...).
        epoch_seconds: per epoch, its wall time (the first includes compiling the block
            of updates).
        epoch_steps: per epoch, the update count at its end.
        stopped: why training ended early (None when it ran to the end), this run's: a
            resumed run that ran to its end says None.
        stop_reason: the kind: 'max_steps', 'non_finite', 'early_stopping' or 'callback'.
        warnings: every warning ``fit`` gave about the run (updates skipped, a rising
            loss, a stop on non-finite updates), in order.
        setup_seconds: the time ``fit`` spent before its first epoch (checks, tracing the
            objective on the data, placing data and state, a resume), this run's.
        compile_seconds: the time XLA spent compiling while this run went on (its
            set-up, the block of updates, validation), part of ``setup_seconds`` and of the
            epochs' seconds; 0 where a block compiled by an earlier fit was reused.
    """

    loss: list[float] = dataclasses.field(default_factory=list)
    grad_norm: list[float] = dataclasses.field(default_factory=list)
    learning_rate: list[float] = dataclasses.field(default_factory=list)
    finite: list[bool] = dataclasses.field(default_factory=list)
    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    epoch_steps: list[int] = dataclasses.field(default_factory=list)
    stopped: str | None = None
    stop_reason: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    setup_seconds: float = 0.0
    compile_seconds: float = 0.0

    @property
    def steps(self) -> int:
        """Number of updates attempted (skipped ones included)."""
        return len(self.loss)

    @property
    def skipped(self) -> int:
        """Number of updates skipped for a non-finite loss or gradient."""
        return sum(not f for f in self.finite)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (NaN and inf kept as floats)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """Inverse of ``to_dict``."""
        return cls(**d)

    def record(self, loss, grad_norm, learning_rate, finite) -> None:
        """Append the numbers of a block of updates (sequences of equal length)."""
        self.loss += [float(v) for v in loss]
        self.grad_norm += [float(v) for v in grad_norm]
        self.learning_rate += [float(v) for v in learning_rate]
        self.finite += [bool(v) for v in finite]

    def __repr__(self) -> str:
        last = self.loss[-1] if self.loss else math.nan
        return f"History(steps={self.steps}, skipped={self.skipped}, last loss={last:.4g}, epochs={len(self.epochs)})"
