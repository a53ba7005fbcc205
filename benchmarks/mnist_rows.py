"""Row-by-row MNIST (T 28 steps of 28 pixels): jaxrnn against PyTorch on the same data,
model, initial weights, optimizer, batch size and number of updates, in one run.

    python -m benchmarks.data mnist data/mnist
    python -m benchmarks.mnist_rows --data data/mnist --out benchmarks/results/mnist_rows

For each cell (LSTM, GRU; H 128), a jaxrnn ``ManyToOne`` is built and copied into
PyTorch (``jaxrnn.to_torch`` and the head's weights), so both start from the same
weights. Both train with Adam (learning rate 1e-3) after clipping the global gradient
norm at 1, batches of 128 drawn in a fresh order each epoch (each framework its own
order), 469 updates an epoch. The epochs are interleaved: jaxrnn's epoch k (``fit``'s
callback) is followed by PyTorch's epoch k, so that the machine's drift reaches both.
After each epoch both are evaluated on the 10,000 test images, outside the timing.
Epoch time: the wall time of the epoch's updates (jaxrnn: ``History.epoch_seconds``,
its first epoch including compilation); the table gives the median of epochs 2 on.
Writes results.json, results.md and accuracy.png.
"""

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment, torch_head, write_results
from jaxrnn import datasets
from jaxrnn.cells import CELLS


def torch_copy(model: jaxrnn.ManyToOne):
    """The PyTorch model computing what ``model`` does, with its weights."""
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = jaxrnn.to_torch(model.rnn, batch_first=True)
            self.head = torch_head(model.head)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    return Classifier()


def torch_epoch(net, opt, x, y, batch: int, epoch: int) -> float:
    """One epoch of PyTorch updates (the same clipping and Adam); returns its seconds."""
    import torch

    order = torch.from_numpy(np.random.default_rng(epoch).permutation(len(x)))
    start = time.perf_counter()
    net.train()
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - start


def torch_accuracy(net, x, y) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        right = sum(int((net(x[i : i + 2000]).argmax(1) == y[i : i + 2000]).sum()) for i in range(0, len(x), 2000))
    return right / len(x)


def run_cell(cell: str, train: jaxrnn.Data, test: jaxrnn.Data, args) -> dict:
    import torch

    k_rnn, k_head, k_fit = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    model = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(CELLS[cell], 28, args.hidden, key=k_rnn), jaxrnn.Head(args.hidden, 10, key=k_head)
    )
    net = torch_copy(model)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    tx, ty = torch.from_numpy(np.asarray(train.inputs)), torch.from_numpy(np.asarray(train.targets)).long()
    sx, sy = torch.from_numpy(np.asarray(test.inputs)), torch.from_numpy(np.asarray(test.targets)).long()
    epochs = []

    def after_epoch(step, metrics, trained):
        e = len(epochs)
        jax_acc = jaxrnn.evaluate(trained, test, loss="cross_entropy", batch_size=2000)["accuracy"]
        seconds = torch_epoch(net, opt, tx, ty, args.batch, e)
        epochs.append(
            {"jaxrnn_train_loss": metrics["loss"], "jaxrnn_test_accuracy": jax_acc, "torch_seconds": seconds,
             "torch_test_accuracy": torch_accuracy(net, sx, sy)}
        )  # fmt: skip
        print(cell, e + 1, json.dumps(epochs[-1]), flush=True)

    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    _, history = jaxrnn.fit(
        model, train, key=k_fit, loss="cross_entropy", optimizer=optimizer, epochs=args.epochs,
        batch_size=args.batch, verbose=False, callbacks=[jaxrnn.callbacks.LambdaCallback(after_epoch)],
    )  # fmt: skip
    for e, seconds in zip(epochs, history.epoch_seconds):
        e["jaxrnn_seconds"] = seconds
    return {"cell": cell, "epochs": epochs, "updates_per_epoch": -(-train.size // args.batch)}


def table(results: dict) -> str:
    rows = [
        "| cell | epochs | jaxrnn test accuracy | PyTorch test accuracy | jaxrnn s/epoch | PyTorch s/epoch | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        e = r["epochs"]
        later = e[1:] or e
        js = statistics.median(x["jaxrnn_seconds"] for x in later)
        ts = statistics.median(x["torch_seconds"] for x in later)
        rows.append(
            f"| {r['cell']} | {len(e)} | {e[-1]['jaxrnn_test_accuracy']:.4f} | {e[-1]['torch_test_accuracy']:.4f} "
            f"| {js:.1f} | {ts:.1f} | {js / ts:.2f} |"
        )
    return "\n".join(rows)


def plot(results: dict, folder: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for i, r in enumerate(results["runs"]):
        n = np.arange(1, len(r["epochs"]) + 1)
        ax.plot(n, [e["jaxrnn_test_accuracy"] for e in r["epochs"]], "o-", color=f"C{i}", label=f"{r['cell']} jaxrnn")
        ax.plot(n, [e["torch_test_accuracy"] for e in r["epochs"]], "x--", color=f"C{i}", label=f"{r['cell']} PyTorch")
    ax.set_xlabel("epoch (469 updates of 128 images)")
    ax.set_ylabel("test accuracy (10,000 images)")
    ax.set_title("row-by-row MNIST, H 128, Adam 1e-3, clip 1; same initial weights", fontsize=9)
    ax.legend(fontsize=8)
    path = os.path.join(folder, "accuracy.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of the MNIST IDX files (python -m benchmarks.data mnist)")
    p.add_argument("--out", default="benchmarks/results/mnist_rows")
    p.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru", "rnn"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--limit", type=int, help="train on the first N images only (a quick check)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train = datasets.mnist(args.data, "train")
    test = datasets.mnist(args.data, "test")
    if args.limit:
        train = jaxrnn.Data(train.inputs[: args.limit], train.targets[: args.limit])
        test = jaxrnn.Data(test.inputs[: args.limit], test.targets[: args.limit])
    results = {"environment": environment(threads=os.cpu_count()), "config": vars(args), "runs": []}
    for cell in args.cells:
        results["runs"].append(run_cell(cell, train, test, args))
    header = (
        "Row-by-row MNIST, jaxrnn and PyTorch from the same initial weights, epochs interleaved; "
        "accuracy after the last epoch, seconds per epoch the median of epochs 2 on."
    )
    write_results(args.out, "mnist_rows", argv, header, results, table(results))
    plot(results, args.out)
    print(table(results))


if __name__ == "__main__":
    main()
