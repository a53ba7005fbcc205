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


def caption(results: dict) -> str:
    """What ``table`` shows: the metric by name (MSE, or cross-entropy with the accuracy) and the task."""
    metric = _metric(results["runs"])
    metric = f"{metric} (accuracy)" if metric == "cross-entropy" else metric
    return f"Final validation {metric} per cell and length, {results['config']['task']} task, one seed"


def table(results: dict) -> str:
    """Markdown table: final validation loss (and accuracy) per cell and length, with the baseline."""
    config = results["config"]
    lengths, cells = config["lengths"], config["cells"]
    runs = results["runs"]
    header = "| cell | " + " | ".join(f"length {n}" for n in lengths) + " |"
    rows = [header, "|---" * (len(lengths) + 1) + "|"]
    for c in cells:
        cells_text = []
        for n in lengths:
            r = runs[f"{c}@{n}"]
            acc = r.get("val_accuracy")
            cells_text.append(f"{r['val_loss']:.4f}" + (f" ({100 * acc:.0f}%)" if acc is not None else ""))
        rows.append(f"| {c} | " + " | ".join(cells_text) + " |")
    base = [runs[f"{cells[0]}@{n}"]["baseline"] for n in lengths]
    rows.append("| memoryless baseline | " + " | ".join("-" if b is None else f"{b:.4f}" for b in base) + " |")
    return "\n".join(rows)


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
        json.dump(results, f, indent=1, allow_nan=True)
    with open(path("table.md"), "w") as f:
        f.write(f"{caption(results)}:\n\n{table(results)}\n")
    config, runs = results["config"], results["runs"]
    lengths, cells = config["lengths"], config["cells"]
    metric = _metric(runs)

    fig, axes = plt.subplots(1, len(lengths), figsize=(4 * len(lengths), 3.2), layout="constrained", squeeze=False)
    for ax, n in zip(axes[0], lengths):
        for c in cells:
            r = runs[f"{c}@{n}"]
            ax.plot(np.linspace(0, 1, len(r["train_loss"])) * len(r["epochs"]), r["train_loss"], label=c, lw=1)
        base = runs[f"{cells[0]}@{n}"]["baseline"]
        if base is not None:
            ax.axhline(base, color="k", ls="--", lw=0.8, label="baseline")
        ax.set_yscale("log")
        ax.set_title(f"{config['task']}, length {n}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"training loss ({metric})")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper")  # covers no curve
    fig.savefig(path("learning_curves.png"), dpi=110)
    plt.close(fig)

    n = max(lengths)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, when in zip(axes, ["init", "trained"]):
        norms = {c: runs[f"{c}@{n}"][f"grad_vs_lag_{when}"] for c in cells}
        plots.plot_gradient_norms(norms, ax=ax, ylabel="||dL/dh_k||, h part of the state s_k")
        ax.set_title(f"length T = {n}, {'at initialisation' if when == 'init' else 'after training'}")
        ax.title.set_fontsize(9)
    fig.savefig(path("gradient_vs_lag.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 3.2), layout="constrained", squeeze=False)
    for ax, c in zip(axes[0], cells):
        spec = runs[f"{c}@{n}"]["spectrum"]
        plots.plot_spectrum_vs_lag(np.asarray(spec["log_singular_values"]), ax=ax)
        state = "s = (h, c)" if c == "lstm" else "s = h"
        ax.set_title(f"{c} ({state}), trained, T = {n}\ntop 8 singular values of ds_T/ds_(T-k)")
        ax.title.set_fontsize(9)
    fig.savefig(path("spectra.png"), dpi=110)
    plt.close(fig)

    if "rnn" in cells and "eigenvalues_W_hh" in runs[f"rnn@{n}"]["spectrum"]:
        eig = np.asarray(runs[f"rnn@{n}"]["spectrum"]["eigenvalues_W_hh"])
        fig = plots.plot_eigenvalues(eig[:, 0] + 1j * eig[:, 1], label="trained W_hh")
        fig.axes[0].set_title(f"simple RNN trained at length {n}\neigenvalues of W_hh (unit circle dashed)")
        fig.axes[0].title.set_fontsize(9)
        fig.savefig(path("eigenvalues_rnn.png"), dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for c in cells:
        ax.plot(lengths, [runs[f"{c}@{m}"]["val_loss"] for m in lengths], "o-", label=c)
    base = [runs[f"{cells[0]}@{m}"]["baseline"] for m in lengths]
    if not any(b is None or math.isnan(b) for b in base):
        ax.plot(lengths, base, "k--", label="baseline")
    ax.set_xlabel("length")
    ax.set_ylabel(f"final validation loss ({metric})")
    ax.set_yscale("log")
    ax.set_title(f"{config['task']}, one seed")
    fig.legend(loc="outside right upper")  # covers neither a curve nor the baseline
    fig.savefig(path("final_loss.png"), dpi=110)
    plt.close(fig)
    return written
