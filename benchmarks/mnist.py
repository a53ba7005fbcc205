"""MNIST as sequences: jaxrnn against PyTorch on the same data, model, initial weights,
optimizer, batch size and number of updates, in one run.

    python -m jaxrnn.datasets.fetch mnist data/mnist
    python -m benchmarks.mnist --data data/mnist --epochs 3 --out benchmarks/results/mnist_rows
    python -m benchmarks.mnist --data data/mnist --cores 1 2 --epochs 3 --out benchmarks/results/mnist_rows_cores
    python -m benchmarks.mnist --data data/mnist --order pixels --cells lstm rnn irnn \
        --out benchmarks/results/mnist_pixels

``--order``: rows (T 28 steps of 28 pixels), pixels (T 784 steps of one pixel) or
permuted (the pixels in one fixed random order, ``datasets.permutation(seed 0)``). For
each cell (H 128), a jaxrnn ``ManyToOne`` is built and copied into PyTorch
(``jaxrnn.to_torch`` and the head's weights), so both start from the same weights.
Cells: lstm, gru, rnn (tanh, orthogonal W_hh) and irnn (Le et al. 2015: relu, W_hh the
identity). Both train with Adam (``--lr``) after clipping the global gradient norm at 1,
batches of 128 drawn in a fresh order each epoch (each framework its own order);
``--limit N`` trains on the first N training images only (a reduced run), the test set
is always the whole 10,000. By default each framework runs as a user gets it: jaxrnn's
fit with its default placement (on a CPU one device per core, the batch split by rows
over as many as the work pays for: ``Placement.for_batch``, 8 rows here), PyTorch with its default
threads (one per core). ``--cores 1 2`` trains each cell twice, on one core and on two:
jaxrnn on that many CPU devices (``Placement(devices=n)``), PyTorch on that many threads
(``torch.set_num_threads``). The epochs are interleaved: jaxrnn's epoch k (``fit``'s
callback) is followed by PyTorch's epoch k, so that the machine's drift reaches both.
After each epoch both are evaluated on the 10,000 test images, outside the timing.
Epoch time: the wall time of the epoch's updates (jaxrnn: ``History.epoch_seconds``,
its first epoch including compilation); the table gives the median of epochs 2 on.
Writes results.json, results.md, accuracy.png and, with ``--save-models``, each trained
jaxrnn model as ``models/<cell>.eqx`` (``jaxrnn.load``), for the spectra of trained models.
"""

import argparse
import json
import os
import statistics

import jax
import numpy as np
import optax

import jaxrnn
from benchmarks.common import (
    environment,
    save_figure,
    torch_epoch,
    torch_flush_denormals,
    write_results,
)
from jaxrnn import datasets
from jaxrnn.cells import GRUCell, LSTMCell, SimpleRNNCell

CELLS = {
    "lstm": (LSTMCell, {}, 1e-3),
    "gru": (GRUCell, {}, 1e-3),
    "rnn": (SimpleRNNCell, {}, 1e-3),
    "irnn": (
        SimpleRNNCell,
        {"activation": "relu", "W_hh_init": jaxrnn.init.identity(), "W_xh_init": jax.nn.initializers.normal(1e-3)},
        1e-4,
    ),
}
"""Each cell name's class, options and Adam learning rate (``--lr`` overrides it): the IRNN's
input weights N(0, 0.001^2) and a rate of 1e-4, since from the identity a relu state over
784 steps diverges at 1e-3."""


def torch_accuracy(net, x, y) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        right = sum(int((net(x[i : i + 2000]).argmax(1) == y[i : i + 2000]).sum()) for i in range(0, len(x), 2000))
    return right / len(x)


def run_cell(cell: str, train: jaxrnn.Data, test: jaxrnn.Data, args, cores: int | None) -> dict:
    """One cell trained by both frameworks; ``cores``: jaxrnn on that many CPU devices and
    PyTorch on that many threads (None: jaxrnn's default placement, PyTorch's threads as set)."""
    import torch

    if cores is not None:
        torch.set_num_threads(cores)
    threads = torch.get_num_threads()
    k_rnn, k_head, k_fit = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    cell_type, options, lr = CELLS[cell]
    lr = args.lr or lr
    features = train.inputs.shape[-1]
    model = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(cell_type, features, args.hidden, key=k_rnn, **options),
        jaxrnn.Head(args.hidden, 10, key=k_head),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"  # cuDNN's RNNs where there is a GPU
    net = jaxrnn.to_torch(model).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    tx, ty, sx, sy = (
        torch.from_numpy(np.array(a)).to(device) for a in (train.inputs, train.targets, test.inputs, test.targets)
    )
    ty, sy = ty.long(), sy.long()
    epochs = []

    def after_epoch(step, metrics, trained):
        e = len(epochs)
        jax_acc = jaxrnn.evaluate(trained, test, loss="cross_entropy", batch_size=2000)["accuracy"]
        seconds = torch_epoch(net, opt, tx, ty, args.batch, e, torch.nn.functional.cross_entropy)
        epochs.append(
            {"jaxrnn_train_loss": metrics["loss"], "jaxrnn_test_accuracy": jax_acc, "torch_seconds": seconds,
             "torch_test_accuracy": torch_accuracy(net, sx, sy)}
        )  # fmt: skip
        print(cell, e + 1, json.dumps(epochs[-1]), flush=True)

    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))
    trained, history = jaxrnn.fit(
        model, jaxrnn.Batches(train, args.batch), key=k_fit, loss="cross_entropy", optimizer=optimizer,
        epochs=args.epochs, verbose=False, callbacks=[jaxrnn.callbacks.LambdaCallback(after_epoch)],
        placement=None if cores is None else jaxrnn.Placement(cores),
    )  # fmt: skip
    for e, seconds in zip(epochs, history.epoch_seconds):
        e["jaxrnn_seconds"] = seconds
    if args.save_models:
        os.makedirs(os.path.join(args.out, "models"), exist_ok=True)
        jaxrnn.save(os.path.join(args.out, "models", f"{cell}.eqx"), trained)
    return {
        "cell": cell,
        "jaxrnn_devices": len(trained.head.W_hy.sharding.device_set),
        "torch_threads": threads,
        "torch_device": device,
        "lr": lr,
        "epochs": epochs,
        "updates_per_epoch": -(-train.size // args.batch),
    }


def table(results: dict) -> str:
    rows = [
        "| cell | jaxrnn devices | PyTorch threads | epochs | updates | Adam lr | jaxrnn test accuracy "
        "| PyTorch test accuracy | jaxrnn s/epoch | PyTorch s/epoch | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        e = r["epochs"]
        later = e[1:] or e
        js = statistics.median(x["jaxrnn_seconds"] for x in later)
        ts = statistics.median(x["torch_seconds"] for x in later)
        rows.append(
            f"| {r['cell']} | {r.get('jaxrnn_devices', 1)} | {r.get('torch_threads', '')} "
            f"| {len(e)} | {len(e) * r['updates_per_epoch']} | {r['lr']:g} "
            f"| {e[-1]['jaxrnn_test_accuracy']:.4f} | {e[-1]['torch_test_accuracy']:.4f} "
            f"| {js:.1f} | {ts:.1f} | {js / ts:.2f} |"
        )
    return "\n".join(rows)


def plot(results: dict, folder: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for i, r in enumerate(results["runs"]):
        n = np.arange(1, len(r["epochs"]) + 1)
        ax.plot(n, [e["jaxrnn_test_accuracy"] for e in r["epochs"]], "o-", color=f"C{i}", label=f"{r['cell']} jaxrnn")
        ax.plot(n, [e["torch_test_accuracy"] for e in r["epochs"]], "x--", color=f"C{i}", label=f"{r['cell']} PyTorch")
    config = results["config"]
    ax.set_xlabel(f"epoch ({results['runs'][0]['updates_per_epoch']} updates of {config['batch']} images)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("test accuracy (10,000 images)")
    ax.set_title(f"{title}, H {config['hidden']}, Adam, clip 1; same initial weights", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, folder, "accuracy.png")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the MNIST IDX files (python -m jaxrnn.datasets.fetch mnist)")
    p.add_argument("--out", required=True)
    p.add_argument("--order", default="rows", choices=["rows", "pixels", "permuted"])
    p.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=sorted(CELLS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, help="Adam's learning rate for every cell (default: the cell's, CELLS)")
    p.add_argument("--limit", type=int, help="train on the first N training images only (a reduced run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--torch-threads", type=int, help="PyTorch's CPU threads (default: its own); 1 is its fastest at T 784 here"
    )
    p.add_argument(
        "--cores",
        type=int,
        nargs="+",
        help="train each cell once per count: jaxrnn on that many CPU devices, PyTorch on that many threads "
        "(default: each framework's own: jaxrnn's default placement, PyTorch's threads)",
    )
    p.add_argument("--save-models", action="store_true", help="write each trained jaxrnn model to OUT/models/")
    args = p.parse_args(argv)
    if args.cores and max(args.cores) > jax.device_count():
        need = max(args.cores)
        p.error(f"--cores {need} needs {need} JAX devices, this process has {jax.device_count()} (JAX_NUM_CPU_DEVICES)")
    torch_flush_denormals()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    train = datasets.mnist(args.data, "train", order=args.order)
    test = datasets.mnist(args.data, "test", order=args.order)
    if args.limit:
        train = jaxrnn.Data(train.inputs[: args.limit], train.targets[: args.limit])
    results = {"environment": environment(threads=os.cpu_count()), "config": vars(args), "runs": []}
    for cell in args.cells:
        for cores in args.cores or [None]:
            results["runs"].append(run_cell(cell, train, test, args, cores))
    title = {
        "rows": "row-by-row MNIST (T 28)",
        "pixels": "pixel MNIST (T 784)",
        "permuted": "permuted pixel MNIST (T 784)",
    }
    header = (
        f"{title[args.order]}, jaxrnn and PyTorch from the same initial weights, epochs interleaved; "
        "accuracy after the last epoch, seconds per epoch the median of epochs 2 on; PyTorch flushes denormals "
        "to zero, as XLA:CPU does."
    )
    write_results(args.out, "mnist", argv, header, results, table(results))
    plot(results, args.out, title[args.order])
    print(table(results))


if __name__ == "__main__":
    main()
