"""The long-term-dependency study of the notes: simple RNN vs LSTM vs GRU as the distance grows.

For each sequence length, cell and seed: train on a long-range task with ``fit``, and
measure the gradient that reaches back in time (||dL/ds_k|| against the lag, at
initialisation and after training) and the spectra of the trained step Jacobians. Each
(cell, length) is summarised over the seeds by the mean and the sample standard deviation.
Returns plain numbers; ``jaxrnn.study.report`` writes them out.
"""

import dataclasses
import time
import zlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import spectra, tasks
from jaxrnn.cells import CELLS, SimpleRNNCell
from jaxrnn.cells.chrono import chrono_init
from jaxrnn.data import Batches
from jaxrnn.train import Placement, default_optimizer, fit
from jaxrnn.train.losses import resolve_loss

INITS = ("chrono", "default")
STUDY_TASKS = ("adding", "copy_memory", "france")
"""The tasks of ``jaxrnn.tasks.TASKS`` the study runs: each takes a length (a distance for france)."""


@dataclasses.dataclass
class StudyConfig:
    """What the study runs. The defaults are the quick study (a few minutes on 2 CPU cores);
    ``StudyConfig.full()`` is the published-size one.

    ``seeds``: independent runs per (cell, length), each with its own data, initial weights
    and batch order, all derived from ``seed``. ``init``: "chrono" gives the LSTM and the
    GRU chrono-initialised gate biases for dependencies up to the sequence length
    (``jaxrnn.cells.chrono``); "default" keeps each cell's own initialisation.
    """

    task: str = "adding"
    lengths: tuple[int, ...] = (10, 25, 50)
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    hidden: int = 64
    examples: int = 16_000
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    seeds: int = 3
    init: str = "chrono"

    @classmethod
    def full(cls) -> "StudyConfig":
        """Arjovsky et al. (2016) scale: T up to 400, 128 units, 50 000 sequences."""
        return cls(lengths=(50, 100, 200, 400), hidden=128, examples=50_000, epochs=10)

    def validate(self) -> None:
        """ValueError naming the bad field."""
        if self.task not in STUDY_TASKS:
            raise ValueError(f"unknown task {self.task!r}; the study runs {', '.join(STUDY_TASKS)}")
        for c in self.cells:
            if c not in CELLS:
                raise ValueError(f"unknown cell {c!r}; choose from {', '.join(CELLS)}")
        minimum = 3 if self.task == "france" else 2
        for n in self.lengths:
            if n < minimum:
                raise ValueError(f"length {n} is too short for the {self.task} task (at least {minimum})")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose from {', '.join(INITS)}")
        for field in ("hidden", "epochs", "seeds"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.examples < 2 * self.batch_size:
            raise ValueError(f"examples ({self.examples}) must be at least twice batch_size ({self.batch_size})")


def make_task(config: StudyConfig, length: int, key) -> tasks.Task:
    """The study's task at one length (the adding/copy T, or the France distance)."""
    n_val = min(1000, config.examples // 5)
    return tasks.TASKS[config.task](length, config.examples + n_val, key=key, n_validation=n_val)


def gradient_vs_lag(model, task: tasks.Task, n: int = 16) -> np.ndarray:
    """Mean over n validation sequences of ||dL/ds_k|| against the lag T - k, for the task's
    loss on the last step, through the first layer's cell; s_k is its whole state (h, and c
    for the LSTM: the LSTM's memory is c, and at a chrono initialisation little of it
    reaches h in one step)."""
    layer = model.rnn.layers[0]
    cell = layer.cell
    loss_fn = resolve_loss(task.loss)

    def one(x, y):
        def loss(hs):
            logits = model.head(hs[-1]) if task.architecture == "many_to_one" else model.head(hs)[-1]
            target = y if task.architecture == "many_to_one" else y[-1]
            return loss_fn(logits[None], target[None])[0]

        g = spectra.state_gradients(cell, x, None, loss)
        return spectra.gradient_norms_vs_lag(g)

    v = task.validation
    return np.asarray(jax.vmap(one)(v.inputs[:n], v.targets[:n]).mean(0))


def jacobian_spectrum(model, task: tasks.Task, top: int = 8) -> dict:
    """Top log singular values of d s_T / d s_{T-k} vs k, and the Lyapunov exponents, on
    the first validation sequence."""
    cell = model.rnn.layers[0].cell
    J = spectra.step_jacobians(cell, task.validation.inputs[0])
    logs = spectra.log_singular_values_vs_lag(J)
    ly = spectra.lyapunov_spectrum(J, transient=min(10, J.shape[0] // 4), num=min(top, J.shape[1]))
    out = {"log_singular_values": np.asarray(logs[:, :top]).tolist(), "lyapunov": np.asarray(ly.exponents).tolist()}
    if isinstance(cell, SimpleRNNCell):
        b = spectra.pascanu_bound(cell)
        out["pascanu"] = {"sigma_max": float(b.sigma_max), "gamma": b.gamma, "vanishing": bool(b.vanishing)}
        out["eigenvalues_W_hh"] = [[float(z.real), float(z.imag)] for z in np.asarray(spectra.eigenvalues(cell.W_hh))]
    return out


def cell_key(key: jax.Array, name: str) -> jax.Array:
    """The key of cell ``name`` in a study: ``key`` folded with the CRC-32 of the name.

    Not Python's ``hash``: that is salted per process, and the study must give the same
    numbers in every process.
    """
    return jax.random.fold_in(key, zlib.crc32(name.encode()) % 2**31)


def seed_key(config: StudyConfig, index: int) -> jax.Array:
    """The key of the study's ``index``-th seed: ``PRNGKey(config.seed)`` folded with ``index``."""
    return jax.random.fold_in(jax.random.PRNGKey(config.seed), index)


def run_study(config: StudyConfig, verbose: bool = False, log=print) -> dict:
    """Train every cell at every length for every seed; returns a JSON-able dict of all the
    numbers: ``runs["<cell>@<length>"]`` holds the mean and spread over seeds and, under
    ``"seeds"``, every seed's own run. ``verbose``: fit's progress display for every run;
    ``log`` gets a line per run."""
    config.validate()
    results = {"config": dataclasses.asdict(config), "runs": {}}
    for length in config.lengths:
        per_cell = {name: [] for name in config.cells}
        for index in range(config.seeds):
            key = seed_key(config, index)
            task = make_task(config, length, jax.random.fold_in(key, length))
            for name in config.cells:
                run = train_one(
                    config, task, name, cell_key(key, name), verbose, spectrum=length == max(config.lengths)
                )
                run["seed_index"] = index
                per_cell[name].append(run)
                log(
                    f"{name:5s} length {length:4d} seed {index}: val loss {run['val_loss']:.4f} "
                    f"(baseline {task.baseline:.4f}) in {run['seconds']:.0f} s"
                )
        for name, runs in per_cell.items():
            results["runs"][f"{name}@{length}"] = {"cell": name, "length": length, **summarise(runs)}
        eqx.clear_caches()  # one length's compiled steps are not needed at the next
    return results


def initial_model(config: StudyConfig, task: tasks.Task, name: str, k_model: jax.Array, k_init: jax.Array):
    """The untrained model of cell ``name`` for ``task``; the gated cells' biases
    chrono-initialised for the task's length unless ``config.init`` is "default"."""
    model = tasks.build_model(task, CELLS[name], config.hidden, key=k_model)
    if config.init == "chrono" and name != "rnn":
        first = model.rnn.layers[0]
        t_max = max(3, int(task.train.inputs.shape[1]))
        model = eqx.tree_at(lambda m: m.rnn.layers[0].cell, model, chrono_init(first.cell, t_max, key=k_init))
    return model


def train_model(config: StudyConfig, task: tasks.Task, model, key: jax.Array, verbose: bool):
    """``fit`` with the study's settings; returns ``(trained model, history)``. On one
    device whatever the machine: fit's default would split the batches over the machine's
    cores, and the study's numbers would then change with the core count (the order of
    sums, amplified by training); on one device they are the same on any machine."""
    return fit(
        model,
        Batches(task.train, config.batch_size),
        key=key,
        loss=task.loss,
        epochs=config.epochs,
        validation=task.validation,
        optimizer=default_optimizer(config.learning_rate),
        verbose=verbose,
        placement=Placement(devices=1),
    )


def train_one(
    config: StudyConfig, task: tasks.Task, name: str, key: jax.Array, verbose: bool, spectrum: bool = True
) -> dict:
    """One run: build cell ``name`` for ``task``, measure, train with ``fit``, measure again
    (with ``spectrum``, the trained step Jacobians' spectra too: the study takes them at its
    longest length only)."""
    k_model, k_fit, k_init = jax.random.split(key, 3)
    model = initial_model(config, task, name, k_model, k_init)
    grad_init = gradient_vs_lag(model, task)
    started = time.perf_counter()
    model, history = train_model(config, task, model, k_fit, verbose)
    seconds = time.perf_counter() - started
    grad_trained = gradient_vs_lag(model, task)
    final = history.epochs[-1] if history.epochs else {}
    run = {
        "seconds": seconds,
        "steps": int(task.train.inputs.shape[1]),
        "baseline": task.baseline,
        "val_loss": final.get("val_loss"),
        "val_accuracy": final.get("val_accuracy"),
        "epochs": history.epochs,
        "train_loss": _thin(history.loss),
        "grad_norm": _thin(history.grad_norm),
        "grad_vs_lag_init": grad_init.tolist(),
        "grad_vs_lag_trained": grad_trained.tolist(),
        **_memory("init", grad_init),
        **_memory("trained", grad_trained),
    }
    if spectrum:
        run["spectrum"] = jacobian_spectrum(model, task)
    return run


def _memory(when: str, norms: np.ndarray) -> dict:
    """The memory length (``spectra.memory_length``) and whether it is "at least T"."""
    m = spectra.memory_length(jnp.asarray(norms))
    return {f"memory_length_{when}": m.lag, f"memory_length_{when}_at_least": m.at_least}


def summarise(runs: list[dict]) -> dict:
    """One (cell, length) over its seeds: mean and sample standard deviation (0 for one seed)
    of the final validation loss and accuracy, and the runs themselves."""
    out = {
        "baseline": runs[0]["baseline"],
        "steps": runs[0]["steps"],
        "seconds": sum(r["seconds"] for r in runs),
        "seeds": runs,
    }
    for field in ("val_loss", "val_accuracy"):
        values = [r[field] for r in runs]
        if any(v is None for v in values):
            out[field] = out[f"{field}_std"] = None
            continue
        out[field] = float(np.mean(values))
        out[f"{field}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return out


def _thin(values: list[float], points: int = 300) -> list[float]:
    """At most ``points`` evenly spaced values (for the report)."""
    if len(values) <= points:
        return list(values)
    idx = np.linspace(0, len(values) - 1, points).astype(int)
    return [values[i] for i in idx]
