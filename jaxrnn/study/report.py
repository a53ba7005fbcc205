"""Write a study's numbers to a folder: ``results.json``, a markdown table and PNG figures."""

import json
import math
import os
import tempfile

import numpy as np

from jaxrnn.spectra import plots


def check_writable(folder: str, force: bool = False) -> None:
    """Create ``folder`` if needed and make sure files can be written there (before any work).

    A folder that already holds files is written into only if it holds a study report
    (a ``results.json`` of ``jaxrnn study``) or ``force`` is set: a study does not
    overwrite what it did not write.
    """
    if os.path.isdir(folder) and os.listdir(folder) and not force and not _is_report(folder):
        raise OSError(
            f"report folder {folder!r} holds files that are not a jaxrnn report: "
            "choose another folder (--report) or pass --force to write there anyway"
        )
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"report folder {folder!r} is not writable ({e.strerror or e})") from None


def _is_report(folder: str) -> bool:
    try:
        with open(os.path.join(folder, "results.json")) as f:
            results = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and {"config", "runs"} <= set(results)


def _metric(runs: dict) -> str:
    """The study task's loss by name: cross-entropy where the runs have an accuracy, else MSE."""
    return "cross-entropy" if any(r.get("val_accuracy") is not None for r in runs.values()) else "MSE"


def _seeds(results: dict) -> str:
    n = results["config"].get("seeds", 1)
    return "one seed" if n == 1 else f"mean ± standard deviation over {n} seeds"


def caption(results: dict) -> str:
    """What ``table`` shows: the metric by name (MSE, or cross-entropy with the accuracy), the
    task, the initialisation and the seeds."""
    config = results["config"]
    metric = _metric(results["runs"])
    metric = f"{metric} (accuracy)" if metric == "cross-entropy" else metric
    init = "chrono-initialised gates" if config.get("init") == "chrono" else "default initialisation"
    return f"Final validation {metric} per cell and {_length(config)}, {config['task']} task, {init}, {_seeds(results)}"


def _length(config: dict) -> str:
    """What a study length is: the France task's cue-to-answer distance, else the sequence length."""
    return "distance" if config["task"] == "france" else "length"


def _at(results: dict, n: int) -> str:
    """A length in words for titles: 'T = 50'; with the steps where they differ,
    'T = 100 (120 steps)' for the copy task, 'distance 100 (105 steps)' for France."""
    steps = results["runs"][f"{results['config']['cells'][0]}@{n}"].get("steps", n)
    name = f"T = {n}" if _length(results["config"]) == "length" else f"distance {n}"
    return name if steps == n else f"{name} ({steps} steps)"


def _runs(run: dict, field: str) -> np.ndarray:
    """``field`` of every seed of one (cell, length) summary, stacked."""
    return np.asarray([r[field] for r in run["seeds"]], dtype=np.float64)


def table(results: dict) -> str:
    """Markdown table: final validation loss (and accuracy) per cell and length, mean ± sample
    standard deviation over the seeds, with the baseline."""
    config = results["config"]
    lengths, cells = config["lengths"], config["cells"]
    runs = results["runs"]
    header = "| cell | " + " | ".join(f"{_length(config)} {n}" for n in lengths) + " |"
    rows = [header, "|---" * (len(lengths) + 1) + "|"]
    for c in cells:
        cells_text = []
        for n in lengths:
            r = runs[f"{c}@{n}"]
            text = f"{r['val_loss']:.4f} ± {r['val_loss_std']:.4f}"
            if r.get("val_accuracy") is not None:
                text += f" ({100 * r['val_accuracy']:.0f} ± {100 * r['val_accuracy_std']:.0f}%)"
            cells_text.append(text)
        rows.append(f"| {c} | " + " | ".join(cells_text) + " |")
    base = [runs[f"{cells[0]}@{n}"]["baseline"] for n in lengths]
    rows.append("| memoryless baseline | " + " | ".join("-" if b is None else f"{b:.4f}" for b in base) + " |")
    return "\n".join(rows)


def results_json(obj, depth: int = 0) -> str:
    """``obj`` as JSON with one key a line and every list of numbers on one line: readable,
    and a results file about half the size of ``json.dumps(indent=1)``."""
    pad = " " * (depth + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(str(k))}: {results_json(v, depth + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        return "[\n" + ",\n".join(pad + results_json(v, depth + 1) for v in obj) + "\n" + " " * depth + "]"
    return json.dumps(obj, allow_nan=True)


def write_report(results: dict, folder: str, force: bool = False) -> list[str]:
    """Write results.json, table.md and the figures; returns the paths written
    (``force``: see ``check_writable``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_writable(folder, force)
    written = []

    def path(name):
        written.append(os.path.join(folder, name))
        return written[-1]

    with open(path("results.json"), "w") as f:
        f.write(results_json(results) + "\n")
    with open(path("table.md"), "w") as f:
        f.write(f"{caption(results)}:\n\n{table(results)}\n")
    figures = [("learning_curves.png", _learning_curves), ("gradient_vs_lag.png", _gradient_vs_lag)]
    figures += [("spectra.png", _spectra)]
    if "rnn" in results["config"]["cells"]:
        figures += [("eigenvalues_rnn.png", _eigenvalues_rnn)]
    figures += [("final_loss.png", _final_loss)]
    for name, draw in figures:
        fig = draw(plt, results)
        fig.savefig(path(name), dpi=110)
        plt.close(fig)
    return written


def _learning_curves(plt, results: dict):
    """Training loss against epochs, a panel per length, the cells' curves on shared axes."""
    config, runs = results["config"], results["runs"]
    lengths, cells = config["lengths"], config["cells"]
    width = max(6, 4 * len(lengths))
    fig, axes = plt.subplots(1, len(lengths), figsize=(width, 3.2), layout="constrained", squeeze=False)
    for ax, n in zip(axes[0], lengths):
        for c in cells:
            curves = _runs(runs[f"{c}@{n}"], "train_loss")
            x = np.linspace(0, 1, curves.shape[1]) * config["epochs"]
            (line,) = ax.plot(x, curves.mean(0), label=c, lw=1)
            if len(curves) > 1:
                ax.fill_between(x, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2, lw=0)
        base = runs[f"{cells[0]}@{n}"]["baseline"]
        if base is not None:
            ax.axhline(base, color="k", ls="--", lw=0.8, label="baseline")
        ax.set_yscale("log")
        ax.set_title(f"{config['task']}, {_at(results, n)}\nmean over seeds, band min to max")
        ax.title.set_fontsize(9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"training loss ({_metric(runs)})")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper")  # covers no curve
    return fig


def _gradient_vs_lag(plt, results: dict):
    """||dL/ds_k|| against the lag at the longest length, before and after training, shared y axis."""
    config, runs = results["config"], results["runs"]
    n = max(config["lengths"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
    for ax, when in zip(axes, ["init", "trained"]):
        norms = {c: _runs(runs[f"{c}@{n}"], f"grad_vs_lag_{when}") for c in config["cells"]}
        plots.plot_gradient_norms(norms, ax=ax, ylabel="||dL/ds_k||, s = h, or (h, c) for the LSTM")
        ax.set_title(
            f"{config['task']}, {_at(results, n)}, {'at initialisation' if when == 'init' else 'after training'}\n"
            "geometric mean over seeds, band min to max"
        )
        ax.title.set_fontsize(9)
    return fig


def _spectra(plt, results: dict):
    """The top 8 singular values of the trained Jacobian products, a panel per cell, shared y axis."""
    config, runs = results["config"], results["runs"]
    n, cells = max(config["lengths"]), config["cells"]
    fig, axes = plt.subplots(
        1, len(cells), figsize=(4 * len(cells), 3.2), layout="constrained", squeeze=False, sharey=True
    )
    for i, (ax, c) in enumerate(zip(axes[0], cells)):
        spec = runs[f"{c}@{n}"]["seeds"][0]["spectrum"]
        plots.plot_spectrum_vs_lag(np.asarray(spec["log_singular_values"]), ax=ax, legend=i == len(cells) - 1)
        state = "s = (h, c)" if c == "lstm" else "s = h"
        ax.set_title(f"{c} ({state}), trained, {_at(results, n)}, first seed\ntop 8 singular values of ds_T/ds_(T-k)")
        ax.title.set_fontsize(9)
    return fig


def _eigenvalues_rnn(plt, results: dict):
    """The eigenvalues of the trained simple RNN's W_hh against the unit circle."""
    n = max(results["config"]["lengths"])
    eig = np.asarray(results["runs"][f"rnn@{n}"]["seeds"][0]["spectrum"]["eigenvalues_W_hh"])
    fig = plots.plot_eigenvalues(eig[:, 0] + 1j * eig[:, 1], label="trained W_hh")
    title = f"simple RNN trained at {_at(results, n)}, first seed\neigenvalues of W_hh (unit circle dashed)"
    fig.axes[0].set_title(title)
    fig.axes[0].title.set_fontsize(9)
    return fig


def _final_loss(plt, results: dict):
    """Final validation loss against the length, a line per cell, each seed a cross."""
    config, runs = results["config"], results["runs"]
    lengths, cells = config["lengths"], config["cells"]
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for c in cells:
        seeds = [_runs(runs[f"{c}@{m}"], "val_loss") for m in lengths]
        mean = np.asarray([runs[f"{c}@{m}"]["val_loss"] for m in lengths])
        spread = [mean - [s.min() for s in seeds], [s.max() for s in seeds] - mean]
        bar = ax.errorbar(lengths, mean, yerr=spread, fmt="o-", capsize=3, label=c)
        for m, s in zip(lengths, seeds):
            ax.plot([m] * len(s), s, "x", color=bar.lines[0].get_color(), ms=4)
    base = [runs[f"{cells[0]}@{m}"]["baseline"] for m in lengths]
    if not any(b is None or math.isnan(b) for b in base):
        if len(lengths) == 1:  # one point draws no dashed line
            ax.axhline(base[0], color="k", ls="--", label="baseline")
        else:
            ax.plot(lengths, base, "k--", label="baseline")
    ax.set_xlabel(
        "distance from the cue to the answer (steps)" if _length(config) == "distance" else "sequence length T"
    )
    ax.set_ylabel(f"final validation loss ({_metric(runs)})")
    ax.set_yscale("log")
    ax.set_title(f"{config['task']}, mean of {config.get('seeds', 1)} seeds\ncrosses: each seed; bars: min to max")
    ax.title.set_fontsize(9)
    fig.legend(loc="outside right upper")  # covers neither a curve nor the baseline
    return fig
