"""The spectra of models trained on real data: the gradient norm against the lag, the
singular values of the Jacobian products and the Lyapunov spectrum, along real test
sequences, of the pixel-MNIST models (tanh RNN, IRNN, LSTM) and of the two layers of
the character-level LSTM.

    python -m benchmarks.mnist --data data/mnist --order pixels --cells lstm rnn irnn \\
        --save-models --out benchmarks/results/mnist_pixels
    python -m benchmarks.chars --data data/austen/austen.txt --cells lstm --save-models \\
        --out benchmarks/results/chars
    python -m benchmarks.trained_spectra --mnist data/mnist --text data/austen/austen.txt

It reads the models those runs saved (``models/<cell>.eqx``). Along each of
``--sequences`` test sequences (pixel MNIST: the first test images, 784 steps; text:
passages of ``--chars`` characters spread over the test part) it takes the exact step
Jacobians (``spectra.step_jacobians``: the whole state, (h, c) for the LSTM) and
measures:
- the gradient norm ||dL/ds_{T-lag}|| (``spectra.state_gradients``), where L is the
  model's own loss at the last step (cross entropy of the head on h_T against the
  image's label, or the next character) for a cell the head reads, and L = sum(h_T) for
  the character model's lower layer, which no head reads;
- ln sigma_i of the products ds_T/ds_{T-k} (``spectra.log_singular_values_vs_lag``);
- the Lyapunov spectrum along the sequence (``spectra.lyapunov_spectrum``, the first
  ``--transient`` steps discarded), nats per step.
A character model's upper layer reads the outputs of the lower one along the same
passage. Writes results.json, results.md, pixel_mnist.png and chars.png into ``--out``.
"""

import argparse
import os

import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn
from benchmarks.common import save_figure, write_results
from jaxrnn import datasets, spectra

TOP = 4  # singular values kept per lag: those the figures draw


def measure(cell, seqs: list, losses: list, transient: int) -> dict:
    """Gradient norms (sequences, T), the ``TOP`` largest ln sigma (T, TOP) and the Lyapunov
    exponents (n,) along the first sequence, and the memory length of every sequence."""
    norms = np.stack(
        [
            np.asarray(spectra.gradient_norms_vs_lag(spectra.state_gradients(cell, s, loss=f)))
            for s, f in zip(seqs, losses)
        ]
    )
    J = spectra.step_jacobians(cell, seqs[0])
    log_svals = np.asarray(spectra.log_singular_values_vs_lag(J))
    lyap = spectra.lyapunov_spectrum(J, transient=transient)
    return {
        "norms": norms,
        "log_svals": log_svals[:, :TOP],
        "exponents": np.asarray(lyap.exponents),
        "stderr": np.asarray(lyap.stderr),
        "memory": [str(spectra.memory_length(jnp.asarray(n), 1e-3)) for n in norms],
    }


def head_loss(head, target: int):
    """L(h_1..h_T): the cross entropy of ``head`` on h_T against ``target``."""
    return lambda hs: optax.softmax_cross_entropy_with_integer_labels(head(hs[-1]), target)


def pixel_models(folder: str, data: str, n: int, transient: int) -> dict:
    test = datasets.mnist(data, "test", order="pixels")
    out = {}
    for cell in ("rnn", "irnn", "lstm"):
        model = jaxrnn.load(os.path.join(folder, "models", f"{cell}.eqx"))
        seqs = [jnp.asarray(test.inputs[i]) for i in range(n)]
        losses = [head_loss(model.head, int(test.targets[i])) for i in range(n)]
        out[cell] = measure(model, seqs, losses, transient)
        print("pixel MNIST", cell, out[cell]["memory"], out[cell]["exponents"][:3], flush=True)
    return out


def char_layers(folder: str, text: str, n: int, length: int, transient: int) -> dict:
    corpus = datasets.CharCorpus.read(text)
    model = jaxrnn.load(os.path.join(folder, "models", "lstm.eqx"))
    eye = np.eye(len(corpus.vocab), dtype=np.float32)
    starts = np.linspace(0, len(corpus.test) - length - 2, n).astype(int)
    passages = [jnp.asarray(eye[corpus.test[s : s + length]]) for s in starts]
    following = [int(corpus.test[s + length]) for s in starts]
    lower, upper = model.rnn.layers
    below = [lower(p[None])[0][0] for p in passages]
    out = {
        "layer 1 (lower)": measure(lower.cell, passages, [spectra.last_step_loss] * n, transient),
        "layer 2 (upper)": measure(upper.cell, below, [head_loss(model.head, c) for c in following], transient),
    }
    for name, m in out.items():
        print("chars", name, m["memory"], m["exponents"][:3], flush=True)
    return out


def figure(measured: dict, folder: str, name: str, title: str, top: int = TOP) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxrnn.spectra.plots import plot_gradient_norms

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    plot_gradient_norms({name: m["norms"] for name, m in measured.items()}, ax=axes[0], ylabel="||dL/ds_(T-lag)||")
    axes[0].set_title("gradient of the loss at step T (band: min-max over sequences)", fontsize=9)
    for i, (label, m) in enumerate(measured.items()):
        lags = np.arange(1, m["log_svals"].shape[0] + 1)
        for j in range(top):
            axes[1].plot(lags, m["log_svals"][:, j], color=f"C{i}", lw=1.4 if j == 0 else 0.7,
                         label=label if j == 0 else None)  # fmt: skip
        axes[2].plot(np.arange(1, len(m["exponents"]) + 1), m["exponents"], ".-", color=f"C{i}", ms=3, label=label)
    axes[1].set_xlabel("lag k")
    axes[1].set_ylabel("ln σ_i(ds_T/ds_(T-k))")
    axes[1].set_title(f"top {top} singular values of the Jacobian product (first sequence)", fontsize=9)
    axes[1].legend(fontsize=8)
    axes[2].axhline(0, color="k", lw=0.6)
    axes[2].set_xlabel("index i")
    axes[2].set_ylabel("λ_i (nats per step)")
    axes[2].set_title("Lyapunov spectrum along the first sequence", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, folder, name)


def summary(measured: dict, family: str) -> list[str]:
    rows = []
    for name, m in measured.items():
        lag = min(100, m["log_svals"].shape[0])
        rows.append(
            f"| {family} | {name} | {', '.join(m['memory'])} | {m['log_svals'][lag - 1, 0]:.2f} "
            f"| {m['exponents'][0]:.4f} ± {m['stderr'][0]:.4f} "
            f"| {int((m['exponents'] > 0).sum())} / {len(m['exponents'])} |"
        )
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", required=True, help="folder of the MNIST IDX files")
    p.add_argument("--text", required=True, help="the text file the character model was trained on")
    p.add_argument("--mnist-models", default="benchmarks/results/mnist_pixels")
    p.add_argument("--chars-models", default="benchmarks/results/chars")
    p.add_argument("--out", default="benchmarks/results/trained_spectra")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--chars", type=int, default=400, help="characters a passage")
    p.add_argument("--transient", type=int, default=100, help="steps a text passage's Lyapunov estimate discards")
    p.add_argument("--pixel-transient", type=int, default=300, help="the same for an image (its first rows are blank)")
    args = p.parse_args(argv)
    pixels = pixel_models(args.mnist_models, args.mnist, args.sequences, args.pixel_transient)
    chars = char_layers(args.chars_models, args.text, args.sequences, args.chars, args.transient)
    os.makedirs(args.out, exist_ok=True)
    figure(pixels, args.out, "pixel_mnist.png", "pixel MNIST (T 784), trained models, H 128")
    figure(chars, args.out, "chars.png", f"character LSTM on Austen, 2 layers, passages of {args.chars}")
    rows = [
        "| model | cell or layer | memory length per sequence (lag where the norm < 1e-3 of lag 0) "
        "| ln σ_1 at lag 100 | λ_1 (nats/step) | positive exponents |",
        "|---|---|---|---|---|---|",
        *summary(pixels, "pixel MNIST"),
        *summary(chars, "character LSTM"),
    ]
    lists = lambda d: {k: {f: np.asarray(v).tolist() for f, v in m.items()} for k, m in d.items()}  # noqa: E731
    header = "Spectra of models trained on real data, along test sequences."
    write_results(
        args.out, "trained_spectra", argv, header, {"pixels": lists(pixels), "chars": lists(chars)}, "\n".join(rows)
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
