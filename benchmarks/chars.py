"""A character-level language model on Jane Austen's six novels: jaxrnn against PyTorch
on the same text, model, initial weights, optimizer, windows and number of updates.

    python -m jaxrnn.datasets.fetch austen data/austen
    python -m benchmarks.chars --data data/austen/austen.txt --out benchmarks/results/chars

The text (``datasets.CharCorpus``: every character its own id) is split in order: the
first 90% trains, the next 5% validates, the last 5% tests. The training part is cut
into ``--streams`` contiguous streams (one batch row each); truncated BPTT runs windows
of ``--k`` characters along them, the state carried from window to window without
gradient (``jaxrnn.TBPTT(jaxrnn.Batches(data, n_streams), k)``; PyTorch: the state detached between windows), reset
to zero at each epoch's start. An epoch is ``--updates`` windows (the first
``updates * k`` characters of each stream); ``--epochs`` passes over them. For each
cell, a jaxrnn ``ManyToMany`` of ``--layers`` layers of ``--hidden`` units reads the
one-hot characters and is copied into PyTorch (``jaxrnn.to_torch`` and the head), so
both start from the same weights; both train with Adam (``--lr``) after clipping the
global gradient norm at 1. The epochs are interleaved (jaxrnn's epoch k, then
PyTorch's). After each, both are scored on the validation and test text, each cut into
``--streams`` streams read from a zero state in one pass: bits per character, the mean
cross entropy over every character divided by ln 2. Writes results.json, results.md
(with samples of the trained jaxrnn models), bpc.png and, with ``--save-models``, each
trained jaxrnn model as ``models/<cell>.eqx``.
"""

import argparse
import json
import math
import os
import statistics
import time

import jax
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment, save_figure, torch_flush_denormals, torch_head, write_results
from jaxrnn import datasets
from jaxrnn.cells import CELLS
from jaxrnn.tasks import sample_text

PROMPT = "It is a truth universally acknowledged, that "


def torch_copy(model: jaxrnn.ManyToMany):
    """The PyTorch language model computing what ``model`` does, with its weights."""
    import torch

    class LanguageModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = jaxrnn.to_torch(model.rnn, batch_first=True)
            self.head = torch_head(model.head)

        def forward(self, x, state=None):
            out, state = self.rnn(x, state)
            return self.head(out), state

    return LanguageModel()


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def torch_epoch(net, opt, x, y, k: int) -> float:
    """One epoch of TBPTT(k) updates along the streams; returns its seconds."""
    import torch

    start = time.perf_counter()
    net.train()
    state = None
    for t in range(0, x.shape[1], k):
        opt.zero_grad()
        logits, state = net(x[:, t : t + k], state)
        state = detach(state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, t : t + k].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - start


def torch_bpc(net, data: jaxrnn.Data, chunk: int = 250) -> float:
    """Bits per character of ``net`` over the streams of ``data`` from a zero state, read
    in chunks of ``chunk`` steps with the state carried (the same numbers as one pass;
    PyTorch's CPU RNNs here slow down 30-60x past about 500 steps in one call)."""
    import torch

    net.eval()
    x = torch.tensor(np.asarray(data.inputs))  # copies: a jax array's numpy view is read-only
    y = torch.tensor(np.asarray(data.targets)).long()
    nats, state = 0.0, None
    with torch.no_grad():
        for t in range(0, x.shape[1], chunk):
            logits, state = net(x[:, t : t + chunk], state)
            nats += float(
                torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[:, t : t + chunk].flatten(), reduction="sum")
            )
    return nats / y.numel() / math.log(2)


def jax_bpc(model, data: jaxrnn.Data, streams: int) -> float:
    return jaxrnn.evaluate(model, data, loss="cross_entropy", batch_size=streams)["loss"] / math.log(2)


def run_cell(cell: str, corpus: datasets.CharCorpus, train: jaxrnn.Data, held_out: dict, args) -> dict:
    import torch

    V = len(corpus.vocab)
    k_rnn, k_head, k_fit, k_sample = jax.random.split(jax.random.PRNGKey(args.seed), 4)
    rnn = jaxrnn.make_rnn(CELLS[cell], V, args.hidden, key=k_rnn, num_layers=args.layers)
    model = jaxrnn.ManyToMany(rnn, jaxrnn.Head(args.hidden, V, key=k_head))
    net = torch_copy(model)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    tx = torch.from_numpy(np.asarray(train.inputs))
    ty = torch.from_numpy(np.array(train.targets)).long()
    epochs = []

    def after_epoch(step, metrics, trained):
        seconds = torch_epoch(net, opt, tx, ty, args.k)
        record = {"jaxrnn_train_bpc": metrics["loss"] / math.log(2), "torch_seconds": seconds}
        for part, data in held_out.items():
            record[f"jaxrnn_{part}_bpc"] = jax_bpc(trained, data, args.streams)
            record[f"torch_{part}_bpc"] = torch_bpc(net, data)
        epochs.append(record)
        print(cell, len(epochs), json.dumps(record), flush=True)

    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    trained, history = jaxrnn.fit(
        model, jaxrnn.TBPTT(jaxrnn.Batches(train, args.streams), args.k), key=k_fit, loss="cross_entropy",
        optimizer=optimizer, epochs=args.epochs, verbose=False,
        callbacks=[jaxrnn.callbacks.LambdaCallback(after_epoch)],
    )  # fmt: skip
    for e, seconds in zip(epochs, history.epoch_seconds):
        e["jaxrnn_seconds"] = seconds
    if args.save_models:
        os.makedirs(os.path.join(args.out, "models"), exist_ok=True)
        jaxrnn.save(os.path.join(args.out, "models", f"{cell}.eqx"), trained)
    samples = {
        f"temperature {t:g}": sample_text(trained, list(corpus.vocab), PROMPT, 300, temperature=t, key=k_sample)
        for t in (0.5, 1.0)
    }
    return {"cell": cell, "epochs": epochs, "samples": samples}


def table(results: dict) -> str:
    c = results["config"]
    rows = [
        "| cell | updates | jaxrnn test bpc | PyTorch test bpc | difference | jaxrnn validation bpc "
        "| PyTorch validation bpc | jaxrnn s/epoch | PyTorch s/epoch | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        e, later = r["epochs"][-1], r["epochs"][1:] or r["epochs"]
        js = statistics.median(x["jaxrnn_seconds"] for x in later)
        ts = statistics.median(x["torch_seconds"] for x in later)
        rows.append(
            f"| {r['cell']} | {len(r['epochs']) * c['updates']} "
            f"| {e['jaxrnn_test_bpc']:.3f} | {e['torch_test_bpc']:.3f} "
            f"| {e['jaxrnn_test_bpc'] - e['torch_test_bpc']:+.3f} | {e['jaxrnn_validation_bpc']:.3f} "
            f"| {e['torch_validation_bpc']:.3f} | {js:.1f} | {ts:.1f} | {js / ts:.2f} |"
        )
    samples = [
        f"\n{r['cell']}, jaxrnn, {name} (prompt: {PROMPT!r}):\n\n```text\n{text}\n```"
        for r in results["runs"]
        for name, text in r["samples"].items()
    ]
    return "\n".join(rows) + "\n" + "\n".join(samples)


def plot(results: dict, folder: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = results["config"]
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for i, r in enumerate(results["runs"]):
        n = c["updates"] * np.arange(1, len(r["epochs"]) + 1)
        ax.plot(n, [e["jaxrnn_test_bpc"] for e in r["epochs"]], "o-", color=f"C{i}", label=f"{r['cell']} jaxrnn")
        ax.plot(n, [e["torch_test_bpc"] for e in r["epochs"]], "x--", color=f"C{i}", label=f"{r['cell']} PyTorch")
    ax.set_xlabel(f"updates (TBPTT windows of {c['k']} characters x {c['streams']} streams)")
    ax.set_ylabel("test bits per character")
    ax.set_title(
        f"Austen, {c['layers']} layers of {c['hidden']}, Adam {c['lr']:g}, clip 1; same initial weights", fontsize=9
    )
    ax.legend(fontsize=8)
    return save_figure(fig, folder, "bpc.png")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the text file (python -m jaxrnn.datasets.fetch austen)")
    p.add_argument("--out", required=True)
    p.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=sorted(CELLS))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--streams", type=int, default=32, help="parallel streams: the batch")
    p.add_argument("--k", type=int, default=100, help="TBPTT window (characters)")
    p.add_argument("--updates", type=int, default=250, help="updates an epoch")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-models", action="store_true", help="write each trained jaxrnn model to OUT/models/")
    args = p.parse_args(argv)
    torch_flush_denormals()
    corpus = datasets.CharCorpus.read(args.data)
    train = corpus.streams("train", args.streams)
    steps = args.updates * args.k
    if steps > train.inputs.shape[1]:
        raise SystemExit(f"--updates {args.updates} x --k {args.k} exceeds the {train.inputs.shape[1]} steps a stream")
    train = jaxrnn.Data(train.inputs[:, :steps], train.targets[:, :steps])
    held_out = {part: corpus.streams(part, args.streams) for part in ("validation", "test")}
    results = {"environment": environment(threads=os.cpu_count()), "config": vars(args), "vocab": len(corpus.vocab)}
    results["characters"] = {part: int(len(getattr(corpus, part))) for part in ("train", "validation", "test")}
    results["runs"] = [run_cell(cell, corpus, train, held_out, args) for cell in args.cells]
    header = (
        f"Character-level language model on Jane Austen's novels ({len(corpus.vocab)} characters), jaxrnn and "
        "PyTorch from the same initial weights, epochs interleaved; bits per character after the last epoch, "
        "seconds per epoch the median of epochs 2 on; PyTorch flushes denormals to zero, as XLA:CPU does."
    )
    write_results(args.out, "chars", argv, header, results, table(results))
    plot(results, args.out)
    print(table(results))


if __name__ == "__main__":
    main()
