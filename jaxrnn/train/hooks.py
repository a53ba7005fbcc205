"""Small pieces that ``fit`` composes around the block loop: each acts at block or epoch ends.

A hook may ask for a block boundary at a given update (``boundary``), look at the run
after every block and every epoch, and return a ``Stop`` to end training. Hooks whose
state must survive a resume say so with ``state_dict`` / ``load_state_dict`` (JSON).
"""

import csv
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx

from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train.history import History
from jaxrnn.train.state import TrainState


class Stop(NamedTuple):
    """Why training ended early: ``kind`` ('max_steps', 'non_finite', 'early_stopping',
    'callback') and a sentence naming the step or epoch."""

    kind: str
    message: str


class Run:
    """What hooks see: the state, the history, and where the loop stands.

    ``epoch`` is the epoch being run (0-based), ``update`` the next update within it,
    ``epoch_updates`` how many it has; ``step`` the number of updates run in total and
    ``total_steps`` the planned total. ``block_updates`` and ``block_sequences``: the
    updates of the last block and the real sequences they started.
    """

    def __init__(self, state: TrainState, history: History, epochs: int, hooks: Sequence["Hook"]):
        self.state, self.history, self.epochs, self.hooks = state, history, epochs, hooks
        self.epoch, self.update, self.epoch_updates, self.step, self.total_steps = 0, 0, 0, 0, 0
        self.block_updates, self.block_sequences = 0, 0
        self.epoch_sums: dict[str, tuple[float, float]] = {}

    @property
    def model(self) -> eqx.Module:
        """The model as it stands."""
        return self.state.model

    def position(self) -> dict:
        """JSON record of where the loop stands (what a checkpoint stores)."""
        return {"epoch": self.epoch, "update": self.update, "step": self.step, "epoch_sums": self.epoch_sums}

    def restore(self, position: dict) -> None:
        """Inverse of ``position``."""
        self.epoch, self.update, self.step = position["epoch"], position["update"], position["step"]
        self.epoch_sums = {k: tuple(v) for k, v in position["epoch_sums"].items()}


class Hook:
    """Base: every method is optional."""

    def boundary(self, step: int) -> int | None:
        """The next update count (> step) at which this hook needs a block to end, if any."""
        return None

    def start(self, run: Run) -> None:
        """Before the first block (after a resume, at the resumed position)."""

    def after_block(self, run: Run, seconds: float) -> Stop | None:
        """After each block; ``seconds`` is its wall time."""
        return None

    def after_epoch(self, run: Run, metrics: dict[str, float], seconds: float) -> Stop | None:
        """After each epoch with its metrics (validation included)."""
        return None

    def finish(self, run: Run, stop: Stop | None) -> None:
        """Once, at the end."""

    def state_dict(self) -> dict:
        """JSON-able state to checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` gave."""


class MaxSteps(Hook):
    """Stop after ``limit`` updates in total."""

    def __init__(self, limit: int):
        self.limit = limit

    def boundary(self, step):
        return self.limit if step < self.limit else None

    def after_block(self, run, seconds):
        if run.step >= self.limit:
            return Stop("max_steps", f"stopped at step {run.step}: max_steps reached")
        return None


class NonFiniteLimit(Hook):
    """Stop once more than ``limit`` updates were skipped as non-finite (the block itself
    runs no update past that one); the model is then the last finite one."""

    def __init__(self, limit: int):
        self.limit = limit

    def after_block(self, run, seconds):
        if run.history.skipped > self.limit:
            return Stop(
                "non_finite",
                f"stopped at step {run.step}: {run.history.skipped} updates had a non-finite loss, "
                f"gradient or update (max_nonfinite={self.limit}); the model is the last finite one",
            )
        return None


class EarlyStopping(Hook):
    """Stop after ``patience`` epochs without a lower monitored loss (``val_loss``, else the
    training ``loss``); the run's model becomes the best one seen."""

    def __init__(self, patience: int):
        self.patience, self.best, self.since_best, self.best_model = patience, math.inf, 0, None

    def after_epoch(self, run, metrics, seconds):
        monitored = metrics.get("val_loss", metrics["loss"])
        if monitored < self.best:
            self.best, self.since_best, self.best_model = monitored, 0, run.model
        else:
            self.since_best += 1
        if self.since_best >= self.patience:
            if self.best_model is not None:
                run.state = eqx.tree_at(lambda s: s.model, run.state, self.best_model)
            return Stop(
                "early_stopping",
                f"early stopping after epoch {run.epoch + 1}: no improvement in {self.patience} epochs",
            )
        return None

    def state_dict(self):
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state):
        self.best, self.since_best = state["best"], state["since_best"]


class Callbacks(Hook):
    """User functions ``f(step, epoch_metrics, model)`` after each epoch; True stops training."""

    def __init__(self, callbacks: Sequence[Callable]):
        self.callbacks = tuple(callbacks)

    def after_epoch(self, run, metrics, seconds):
        stop = None
        for callback in self.callbacks:
            if callback(run.step, metrics, run.model):
                stop = Stop("callback", f"stopped by a callback after epoch {run.epoch + 1}")
        return stop


class Checkpointer(Hook):
    """Save the state, position, history and hook states to ``path`` every ``every``
    updates and at the end (atomically; ``jaxrnn.train.checkpoint``). A failed final save
    warns and leaves the trained model to the caller. ``host`` brings the state's arrays
    to this host (every process calls it); only the ``writer`` process writes."""

    def __init__(self, path: str, every: int | None, info: dict, architecture: dict | None, host, writer: bool):
        self.path, self.every, self.info, self.architecture = path, every, info, architecture
        self.host, self.writer = host, writer

    def boundary(self, step):
        return (step // self.every + 1) * self.every if self.every else None

    def save(self, run: Run) -> None:
        """Write the checkpoint now."""
        meta = {
            "position": run.position(),
            "history": run.history.to_dict(),
            "hooks": {type(h).__name__: h.state_dict() for h in run.hooks},
            "info": self.info,
            "architecture": self.architecture,
        }
        arrays = self.host(ckpt.arrays_of(run.state))
        if self.writer:
            ckpt.save(self.path, arrays, meta)

    def after_block(self, run, seconds):
        if self.every and run.step % self.every == 0:
            self.save(run)
        return None

    def finish(self, run, stop):
        try:
            self.save(run)
        except OSError as e:
            warnings.warn(
                f"the final checkpoint {self.path!r} could not be written ({e}); fit still returns the trained model",
                RuntimeWarning,
                stacklevel=4,
            )


def _line(epoch: int, epochs: int, metrics: dict[str, float], seconds: float) -> str:
    shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    return f"epoch {epoch}/{epochs}: {shown} ({seconds:.1f} s)"


class Progress(Hook):
    """A tqdm bar (``tqdm.auto``: a widget in Jupyter) and one line per epoch.

    The bar shows the epoch, the epoch's mean loss per update so far, the last block's
    mean gradient norm, real sequences per second and the last validation loss. Its
    rate and ETA start after the first block, so they exclude compilation.
    """

    def __init__(self):
        from tqdm.auto import tqdm

        self.tqdm, self.bar, self.sequences, self.started, self.val_loss = tqdm, None, 0, None, math.nan

    def start(self, run):
        self.bar = self.tqdm(total=run.total_steps, initial=run.step, unit="step", dynamic_ncols=True, smoothing=0)

    def after_block(self, run, seconds):
        h, bar = run.history, self.bar
        bar.total = run.total_steps
        bar.update(run.step - bar.n)
        if self.started is None:  # the first block compiled: count from here
            self.started, bar.initial, bar.start_t = time.perf_counter(), bar.n, time.time()
        else:
            self.sequences += run.block_sequences
        elapsed = time.perf_counter() - self.started
        total, count = run.epoch_sums.get("loss", (math.nan, 0.0))
        norms = [g for g, f in zip(h.grad_norm[-run.block_updates :], h.finite[-run.block_updates :]) if f]
        bar.set_postfix(
            epoch=run.epoch + 1,
            loss=f"{total / count:.4g}" if count else "nan",
            gnorm=f"{sum(norms) / len(norms):.3g}" if norms else "nan",
            seq_s=f"{self.sequences / elapsed:.0f}" if elapsed > 0 else "?",
            val_loss=f"{self.val_loss:.4g}",
            refresh=True,
        )
        return None

    def after_epoch(self, run, metrics, seconds):
        self.val_loss = metrics.get("val_loss", math.nan)
        self.bar.write(_line(run.epoch + 1, run.epochs, metrics, seconds), file=sys.stderr)
        return None

    def finish(self, run, stop):
        if self.bar is not None:
            self.bar.close()


class CSVLog(Hook):
    """One row per epoch (epoch, step, seconds, metrics) in the CSV file ``path``.

    The file is rewritten from the history at each epoch, so after a resume it holds
    exactly the epochs of the run, none twice.
    """

    def __init__(self, path: str):
        self.path = path

    def after_epoch(self, run, metrics, seconds):
        h = run.history
        names = list(dict.fromkeys(k for e in h.epochs for k in e))
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "step", "seconds", *names])
            for i, (e, step, s) in enumerate(zip(h.epochs, h.epoch_steps, h.epoch_seconds), 1):
                writer.writerow([i, step, f"{s:.3f}", *(repr(e.get(n, math.nan)) for n in names)])
        os.replace(tmp, self.path)
        return None
