"""Exploding gradients and clipping (notes 002-003): a tanh RNN started with sigma_max(W_hh)
well above 1, trained by plain SGD on the adding problem, with and without
``optax.clip_by_global_norm``.

    python -m benchmarks.clipping [--gain 2] [--out benchmarks/results/clipping]

Writes results.json and clipping.png (loss and gradient norm per update, log scale).
"""

import argparse
import json
import math
import os

import jax
import numpy as np
import optax

import jaxrnn
from jaxrnn import spectra, tasks


def main() -> None:
    """Train the same start with and without clipping; record loss and gradient norm per update."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gain", type=float, default=2.0, help="W_hh ~ N(0, gain^2 / H)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--out", default="benchmarks/results/clipping")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    key = jax.random.PRNGKey(0)
    task = tasks.adding(args.length, args.steps * 32 + 500, key=key, n_validation=500)
    start = tasks.build_model(task, jaxrnn.SimpleRNNCell, 64, key=key, W_hh_init=jaxrnn.init.gaussian(args.gain))
    bound = spectra.pascanu_bound(start.rnn.layers[0].cell)
    runs = {}
    for name, opt in [
        ("no clipping", optax.sgd(args.lr)),
        ("clip_by_global_norm(1.0)", optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(args.lr))),
    ]:
        _, h = jaxrnn.fit(
            start,
            jaxrnn.Batches(task.train, 32),
            key=key,
            loss="mse",
            epochs=1,
            optimizer=opt,
            validation=task.validation,
            callbacks=[jaxrnn.callbacks.StopOnNonFinite(args.steps)],
            verbose=False,
        )
        runs[name] = {
            "loss": h.loss,
            "grad_norm": h.grad_norm,
            "skipped": h.skipped,
            "val_loss": h.epochs[-1].get("val_loss") if h.epochs else math.nan,
        }
        print(
            f"{name:26s} max grad norm {max(h.grad_norm):.3g}, max loss {np.nanmax(h.loss):.3g}, "
            f"non-finite updates {h.skipped}, final val loss {runs[name]['val_loss']:.4f}"
        )
    out = {"config": vars(args), "sigma_max": float(bound.sigma_max), "runs": runs}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=1, allow_nan=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    for name, r in runs.items():
        finite = lambda v: np.where(np.isfinite(v), v, np.nan)  # noqa: E731 - gaps where it blew up
        axes[0].semilogy(finite(np.asarray(r["loss"])), label=name, lw=1)
        axes[1].semilogy(finite(np.asarray(r["grad_norm"])), label=name, lw=1)
    axes[0].axhline(1 / 6, color="k", ls="--", lw=0.8, label="baseline 1/6")
    axes[0].set_ylabel("training loss (MSE)")
    axes[1].set_ylabel("global gradient norm before clipping")
    for ax in axes:
        ax.set_xlabel("update")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"tanh RNN, sigma_max(W_hh) = {bound.sigma_max:.2f}, SGD lr {args.lr}, adding T={args.length}", fontsize=9
    )
    fig.savefig(os.path.join(args.out, "clipping.png"), dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
