"""Callbacks: the objects ``fit`` composes around its block loop, each acting at block or epoch ends.

Pass them in one list, ``fit(..., callbacks=[EarlyStopping(5), ModelCheckpoint("run.ckpt",
every=200, resume=True), CSVLogger("run.csv")])``. Every feature that is not the update
itself is one of them: stopping (``EarlyStopping``, ``MaxSteps``, ``StopOnNonFinite``),
saving and resuming (``ModelCheckpoint``), showing and logging (``ProgressBar``,
``EpochPrinter``, ``CSVLogger``), and the user's own (a subclass of ``Callback``, or a
function in ``LambdaCallback``). ``fit`` adds ``StopOnNonFinite(10)`` unless one is given,
and with ``verbose=True`` a ``ProgressBar`` (stderr a terminal) or an ``EpochPrinter``
(otherwise) unless a display callback is given.

A callback may ask for a block boundary at a given update (``boundary``), look at the run
(``Run``) after every block and every epoch, and return a ``Stop`` to end training.
Callbacks whose state must survive a resume say so with ``state_dict`` /
``load_state_dict`` (JSON). Only process 0 shows, logs and writes (``run.writer``).

One callback object may serve several runs, one after the other: as in Keras, each
built-in callback forgets an earlier run in ``on_train_begin``, which ``fit`` calls at the
start of every run, before it restores the states a resumed checkpoint holds. A
``ModelCheckpoint`` decides at the start of each run whether its file is resumed or
refused. One object twice in one run's list is an error.
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

from jaxrnn._checks import check_count
from jaxrnn.train import arguments
from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train.history import History
from jaxrnn.train.state import TrainState


class Stop(NamedTuple):
    """Why training ended early: ``kind`` ('max_steps', 'non_finite', 'early_stopping',
    'callback', or a user callback's own) and a sentence naming the step or epoch."""

    kind: str
    message: str


class Run:
    """What callbacks see: the state, the history, and where the loop stands.

    ``epoch`` is the epoch being run (0-based), ``update`` the next update within it,
    ``epoch_updates`` how many it has; ``step`` the number of updates run in total and
    ``total_steps`` the planned total. ``block_updates`` and ``block_sequences``: the
    updates of the last block and the real sequences they started. ``callbacks``: all of
    the run's; ``host(tree)`` brings arrays to this host (a collective: every process
    calls it), ``place(tree)`` puts the training state where fit keeps it, ``writer``:
    this process shows, logs and writes, ``devices``: how many devices share each batch.
    ``epoch_seconds``: the time the current epoch
    has run so far, in this process and before a resume. ``resumed_states``: the callbacks'
    states a resumed checkpoint holds (None when not resuming), ``resumed_models`` the
    models they kept (``Callback.kept_model``).

    ``fit`` makes it; a callback only reads it (and ``state``, to change the run).

    Args:
        state: the training state (model, optimizer state, carried state, key, counts).
        history: the run's ``History``.
        epochs: the epochs asked for.
        callbacks: all of the run's callbacks.
        placement: the run's ``Placement``.
    """

    def __init__(self, state: TrainState, history: History, epochs: int, callbacks: Sequence["Callback"], placement):
        self.state, self.history, self.epochs, self.callbacks = state, history, epochs, callbacks
        self.host, self.place, self.writer = placement.host, placement.state, placement.writer
        self.devices = placement.n_dev
        self.epoch, self.update, self.epoch_updates, self.step, self.total_steps = 0, 0, 0, 0, 0
        self.block_updates, self.block_sequences, self.epoch_seconds = 0, 0, 0.0
        self.epoch_sums: dict[str, tuple[float, float]] = {}
        self.resumed_states: dict | None = None
        self.resumed_models: dict[str, eqx.Module] = {}

    @property
    def model(self) -> eqx.Module:
        """The model as it stands."""
        return self.state.model

    def warn(self, message: str, stacklevel: int = 6) -> None:
        """A ``RuntimeWarning`` to the user, kept in the history (``History.warnings``);
        the default ``stacklevel`` points at fit's caller from a callback's method."""
        self.history.warnings.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)

    def position(self) -> dict:
        """JSON record of where the loop stands (what a checkpoint stores)."""
        return {
            "epoch": self.epoch,
            "update": self.update,
            "step": self.step,
            "epoch_sums": self.epoch_sums,
            "epoch_seconds": self.epoch_seconds,
        }

    def restore(self, position: dict) -> None:
        """Inverse of ``position``."""
        self.epoch, self.update, self.step = position["epoch"], position["update"], position["step"]
        self.epoch_sums = {k: tuple(v) for k, v in position["epoch_sums"].items()}
        self.epoch_seconds = position.get("epoch_seconds", 0.0)  # absent in checkpoints before it was kept

    def restore_callbacks(self) -> None:
        """When resuming, give every callback its checkpointed state and kept model."""
        if self.resumed_states is None:
            return
        for c in self.callbacks:
            c.load_state_dict(self.resumed_states.get(type(c).__name__, {}))
            if type(c).__name__ in self.resumed_models:
                c.restore_kept_model(self.resumed_models[type(c).__name__])


class Callback:
    """Base of the callbacks: every method is optional; subclass it for one's own.

    ``fit`` runs blocks of updates per device call (``steps_per_execution``), so the finest
    grain a callback sees is a block; ``boundary`` asks for a block to end at a given
    update. Return a ``Stop`` from ``on_block_end`` or ``on_epoch_end`` to end training
    (every callback still runs that time).
    """

    def boundary(self, step: int) -> int | None:
        """The next update count (> step) at which this callback needs a block to end, if any."""
        return None

    def on_train_begin(self, run: Run) -> None:
        """Before the first block of every run (after a resume, at the resumed position):
        forget what an earlier run left. A resumed run's ``load_state_dict`` comes after it."""

    def at_start(self, run: Run) -> Stop | None:
        """Once before the first block, after ``on_train_begin`` and a resume: a ``Stop``
        if this callback's rule already holds (the resumed run had stopped here), so that
        no update runs."""
        return None

    def on_block_end(self, run: Run, seconds: float) -> Stop | None:
        """After each block; ``seconds`` is its wall time."""
        return None

    def on_epoch_end(self, run: Run, metrics: dict[str, float], seconds: float) -> Stop | None:
        """After each epoch with its metrics (validation included)."""
        return None

    def on_train_end(self, run: Run, stop: Stop | None) -> None:
        """Once, at the end."""

    def state_dict(self) -> dict:
        """JSON-able state to checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` gave."""

    def kept_model(self) -> eqx.Module | None:
        """A model this callback keeps (``EarlyStopping``'s best), checkpointed beside its
        ``state_dict`` so that a resumed run has it too; None: nothing kept."""
        return None

    def restore_kept_model(self, model: eqx.Module) -> None:
        """Take back what ``kept_model`` gave, when resuming."""


class MaxSteps(Callback):
    """Stop after ``limit`` updates in total (a resumed run's included).

    Args:
        limit: updates (>= 0).
    """

    def __init__(self, limit: int):
        check_count(limit, "MaxSteps limit", 0)
        self.limit = limit

    def boundary(self, step):
        return self.limit if step < self.limit else None

    def at_start(self, run):
        return self.on_block_end(run, 0.0)

    def on_block_end(self, run, seconds):
        if run.step >= self.limit:
            return Stop("max_steps", f"stopped at step {run.step}: max_steps reached")
        return None


class StopOnNonFinite(Callback):
    """Stop once more than ``limit`` updates were skipped as non-finite (the block itself
    runs no update past that one); the model is then the last finite one, and fit warns.

    Whatever the limit, a non-finite update never reaches the parameters. ``fit`` adds
    ``StopOnNonFinite(10)`` unless the callbacks hold one.

    Args:
        limit: the skipped updates tolerated (>= 0).
    """

    def __init__(self, limit: int = 10):
        check_count(limit, "StopOnNonFinite limit", 0)
        self.limit = limit

    def at_start(self, run):
        return self.on_block_end(run, 0.0)

    def on_block_end(self, run, seconds):
        if run.history.skipped > self.limit:
            return Stop(
                "non_finite",
                f"stopped at step {run.step}: {run.history.skipped} updates had a non-finite loss, "
                f"gradient or update (StopOnNonFinite({self.limit})); the model is the last finite one",
            )
        return None


class WarnOnLossRise(Callback):
    """Warn once when an epoch's first update has a loss more than ``factor`` times the
    first epoch's first update: a diverging run (a learning rate too high, say) whose loss
    stays finite, so that the non-finite guard does not catch it. Training goes on.

    First updates are compared because they are alike from epoch to epoch (with truncated
    BPTT the first window of a batch, whose loss is not that of later windows); the check
    starts with the second epoch. ``fit`` adds ``WarnOnLossRise(10)`` unless the callbacks
    hold one.

    Args:
        factor: the rise that warns (> 1).
    """

    def __init__(self, factor: float = 10.0):
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 1:
            raise ValueError(f"WarnOnLossRise factor must be a number > 1, got {factor!r}")
        self.factor, self.warned = float(factor), False

    def on_train_begin(self, run):
        self.warned = False

    def on_epoch_end(self, run, metrics, seconds):
        h = run.history
        if self.warned or len(h.epoch_steps) < 2 or h.epoch_steps[-2] >= len(h.loss):
            return None
        first, now = h.loss[0], h.loss[h.epoch_steps[-2]]
        if math.isfinite(first) and first > 0 and math.isfinite(now) and now > self.factor * first:
            self.warned = True
            run.warn(
                f"the training loss rose from {first:.4g} (first update) to {now:.4g} (the first update of epoch "
                f"{run.epoch + 1}), more than {self.factor:g}x: the run may be diverging (learning rate too high?)"
            )
        return None


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a lower monitored loss (``val_loss``, else
    the training ``loss``); the run's model becomes the best one seen.

    Args:
        patience: epochs without improvement (>= 1).
    """

    def __init__(self, patience: int):
        check_count(patience, "EarlyStopping patience", 1)
        self.patience, self.best, self.since_best, self.best_model = patience, math.inf, 0, None

    def on_train_begin(self, run):
        self.best, self.since_best, self.best_model = math.inf, 0, None

    def on_epoch_end(self, run, metrics, seconds):
        monitored = metrics.get("val_loss", metrics["loss"])
        if monitored < self.best:
            self.best, self.since_best, self.best_model = monitored, 0, run.model
        else:
            self.since_best += 1
        return self._stop(run, run.epoch + 1)

    def at_start(self, run):
        return self._stop(run, run.epoch)  # run.epoch epochs are done

    def _stop(self, run, epochs_done: int) -> Stop | None:
        if self.since_best < self.patience:
            return None
        if self.best_model is not None:
            run.state = eqx.tree_at(lambda s: s.model, run.state, self.best_model)
        return Stop(
            "early_stopping", f"early stopping after epoch {epochs_done}: no improvement in {self.patience} epochs"
        )

    def state_dict(self):
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state):
        self.best, self.since_best = state["best"], state["since_best"]

    def kept_model(self):
        return self.best_model

    def restore_kept_model(self, model):
        self.best_model = model


class LambdaCallback(Callback):
    """A function called after each epoch; a true result stops training (Keras's
    ``LambdaCallback``, with our arguments).

    Args:
        on_epoch_end: ``f(step, epoch_metrics, model) -> bool | None``: the updates so
            far, the epoch's metrics dict and the model as it stands.
    """

    def __init__(self, on_epoch_end: Callable[[int, dict, eqx.Module], bool | None]):
        if not callable(on_epoch_end):
            raise TypeError(f"on_epoch_end must be a function f(step, epoch_metrics, model), got {on_epoch_end!r}")
        self.function = on_epoch_end

    def on_epoch_end(self, run, metrics, seconds):
        if self.function(run.step, metrics, run.model):
            return Stop("callback", f"stopped by a callback after epoch {run.epoch + 1}")
        return None


class ModelCheckpoint(Callback):
    """Save the whole run (model, optimizer state, key, position, history, the callbacks'
    states and the model's architecture) to ``path`` every ``every`` updates and at the
    end, atomically (``jaxrnn.train.checkpoint``); ``jaxrnn.load(path)`` reads its model.

    With ``resume=True`` and a checkpoint at ``path``, training continues from it bit for
    bit on the CPU, as if never interrupted (the data, model and fit arguments must be
    the same). Without it an existing file is an error (nothing is overwritten by
    accident). A failed final save warns and leaves the trained model to the caller. The
    path is checked here, before any work.

    Args:
        path: the ``.npz`` file; its folder must exist and be writable.
        every: updates between saves (None: at the end only).
        info: JSON-able data stored with it (the command line's settings, say).
        resume: continue from an existing checkpoint at ``path``.
    """

    def __init__(self, path: str, *, every: int | None = None, info: dict | None = None, resume: bool = False):
        check_count(every, "ModelCheckpoint every", 1, allow_none=True)
        arguments.checkpoint_path(path, resume)
        self.path, self.every, self.info, self.resume, self.architecture = path, every, info or {}, resume, None

    def boundary(self, step):
        return (step // self.every + 1) * self.every if self.every else None

    def on_train_begin(self, run):
        """Describe the model for ``jaxrnn.load``; decide, from the file as it is now,
        whether this run resumes it (``resume=True``) or must refuse it (an existing file
        without ``resume``); restore the run from it when resuming.

        ``fit`` calls this before the other callbacks' ``on_train_begin``, and restores
        their states (``run.resumed_states``) after them.
        """
        from jaxrnn.io import architecture

        try:
            self.architecture = architecture(run.model)
        except TypeError:  # a model jaxrnn.load cannot describe: saved without it
            self.architecture = None
        header = arguments.checkpoint_path(self.path, self.resume)
        if header is None:
            return
        kept = header.get("kept_models", [])  # the callbacks (by type) whose model follows the state's arrays
        model = ckpt.arrays_of(run.host(run.model))
        arrays, meta = ckpt.load(self.path, (ckpt.arrays_of(run.host(run.state)), [model] * len(kept)))
        state, models = arrays
        run.state = run.place(eqx.combine(state, run.state))
        run.history = History.from_dict(meta["history"])
        run.restore(meta["position"])
        run.resumed_states = meta["hooks"]
        run.resumed_models = {name: eqx.combine(m, run.model) for name, m in zip(kept, models)}

    def save(self, run: Run) -> None:
        """Write the checkpoint now."""
        kept = [(type(c).__name__, m) for c in run.callbacks if (m := c.kept_model()) is not None]
        meta = {
            "position": run.position(),
            "history": run.history.to_dict(),
            "hooks": {type(c).__name__: c.state_dict() for c in run.callbacks},
            "kept_models": [name for name, _ in kept],
            "info": self.info,
            "architecture": self.architecture,
        }
        arrays = run.host((ckpt.arrays_of(run.state), [ckpt.arrays_of(m) for _, m in kept]))
        if run.writer:
            ckpt.save(self.path, arrays, meta)

    def on_block_end(self, run, seconds):
        if self.every and run.step % self.every == 0:
            self.save(run)
        return None

    def on_train_end(self, run, stop):
        try:
            self.save(run)
        except OSError as e:
            warnings.warn(
                f"the final checkpoint {self.path!r} could not be written ({e}); fit still returns the trained model",
                RuntimeWarning,
                stacklevel=4,
            )


def _devices(run) -> str:
    """The devices each batch is split across, in words."""
    return "1 device" if run.devices == 1 else f"{run.devices} devices"


def _line(run, metrics: dict[str, float], seconds: float, first: bool) -> str:
    """An epoch's line; the run's first also says how much of its time was compiling."""
    shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    compiling = f"; fit has compiled for {run.history.compile_seconds:.1f} s" if first else ""
    return f"epoch {run.epoch + 1}/{run.epochs}: {shown} ({seconds:.1f} s{compiling})"


class ProgressBar(Callback):
    """A tqdm bar (``tqdm.auto``: a widget in Jupyter) and one line per epoch, for a terminal.

    The bar says "compiling" until the first block has run; then it shows the epoch, the
    epoch's mean loss per update so far, the last block's mean gradient norm, real
    sequences per second and, once measured, the last validation loss. Its rate and ETA
    start after the first block, so they exclude compilation; they move once per block
    (``steps_per_execution`` updates). The run's first epoch line also says how long
    ``fit`` has compiled (``History.compile_seconds``). Needs tqdm (``pip install 'jaxrnn[progress]'``).
    """

    def __init__(self):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError("ProgressBar needs tqdm: pip install 'jaxrnn[progress]'") from None
        self.tqdm, self.bar, self.sequences, self.started, self.val_loss, self.lines = tqdm, None, 0, None, None, 0

    def on_train_begin(self, run):
        self.bar, self.sequences, self.started, self.val_loss, self.lines = None, 0, None, None, 0
        if run.writer:
            self.bar = self.tqdm(
                total=run.total_steps,
                initial=run.step,
                unit="step",
                dynamic_ncols=True,
                smoothing=0,
                desc=f"compiling ({_devices(run)})",
            )

    def on_block_end(self, run, seconds):
        h, bar = run.history, self.bar
        if bar is None:
            return None
        bar.total = run.total_steps
        bar.update(run.step - bar.n)
        if self.started is None:  # the first block compiled: count from here
            self.started, bar.initial, bar.start_t = time.perf_counter(), bar.n, time.time()
            bar.set_description_str("")
        else:
            self.sequences += run.block_sequences
        elapsed = time.perf_counter() - self.started
        total, count = run.epoch_sums.get("loss", (math.nan, 0.0))
        norms = [g for g, f in zip(h.grad_norm[-run.block_updates :], h.finite[-run.block_updates :]) if f]
        shown = {"epoch": run.epoch + 1}
        if count:
            shown["loss"] = f"{total / count:.4g}"
        if norms:
            shown["gnorm"] = f"{sum(norms) / len(norms):.3g}"
        if elapsed > 0 and self.sequences:
            shown["seq_s"] = f"{self.sequences / elapsed:.0f}"
        if self.val_loss is not None:
            shown["val_loss"] = f"{self.val_loss:.4g}"
        bar.set_postfix(shown, refresh=True)
        return None

    def on_epoch_end(self, run, metrics, seconds):
        self.val_loss = metrics.get("val_loss")
        if self.bar is not None:
            self.bar.write(_line(run, metrics, seconds, first=self.lines == 0), file=sys.stderr)
            self.lines += 1
        return None

    def on_train_end(self, run, stop):
        if self.bar is not None:
            self.bar.close()


class EpochPrinter(Callback):
    """One line per epoch on stderr (metrics and seconds), and a line before the first
    block, which compiles: what ``fit`` shows when stderr is not a terminal (a log file,
    ``| tee``), where a bar's carriage returns would be noise. The run's first epoch line
    also says how long ``fit`` has compiled (``History.compile_seconds``)."""

    def __init__(self):
        self.lines = 0

    def on_train_begin(self, run):
        self.lines = 0
        if run.writer:
            print(
                f"training: {run.total_steps or 'unknown number of'} updates in {run.epochs} epochs "
                f"from step {run.step} on {_devices(run)}; the first block compiles",
                file=sys.stderr,
                flush=True,
            )

    def on_epoch_end(self, run, metrics, seconds):
        if run.writer:
            print(_line(run, metrics, seconds, first=self.lines == 0), file=sys.stderr, flush=True)
            self.lines += 1
        return None


class CSVLogger(Callback):
    """One row per epoch (epoch, step, seconds, metrics) in the CSV file ``path``, whose
    folder must exist (checked here, before any work).

    The file is rewritten from the history at each epoch, so after a resume it holds
    exactly the epochs of the run, none twice. Written with the user's umask.

    Args:
        path: the CSV file.
    """

    def __init__(self, path: str):
        arguments.log_path(path)
        self.path = path

    def on_epoch_end(self, run, metrics, seconds):
        if not run.writer:
            return None
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
