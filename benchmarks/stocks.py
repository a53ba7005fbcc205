"""The lecture notes' stock example on real prices: Microsoft's daily closing price
1986-2017, next-day forecasts by the three cells against the persistence forecast
("tomorrow = today") and a linear autoregression, jaxrnn and PyTorch side by side.

    python -m jaxrnn.datasets.fetch msft data/msft
    python -m benchmarks.stocks --data data/msft/msft.csv --out benchmarks/results/stocks

Three framings of the same series, each cut in time 70/15/15 (train, validation, test)
by ``datasets.forecast_windows`` with ``--window`` past days as the input:
- ``prices``: raw closing prices in dollars, as the notes' first attempt;
- ``scaled prices``: the prices standardised with the training part's mean and standard
  deviation, the notes' fix;
- ``returns``: daily log returns in percent, ``100 ln(P_t / P_{t-1})``, standardised.
Each forecast is scored on the test part in the target's units (dollars, percent) by
its root mean squared error; the baselines are persistence (the window's last value:
tomorrow's price is today's, tomorrow's return is today's), the zero return for
``returns`` (which is persistence of the price), and a linear autoregression on the
same window, fitted by least squares on the training windows. For each cell (H
``--hidden``) and ``--seeds`` seeds a jaxrnn ``ManyToOne`` is trained with MSE, Adam
(``--lr``) after clipping the global gradient norm at 1, batches of ``--batch`` for
``--epochs`` epochs, and its copy in PyTorch from the same weights the same way.
Writes results.json, results.md and forecasts.png.
"""

import argparse
import os
import statistics
import time

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
from jaxrnn.cells import CELLS

FRAMINGS = ("prices", "scaled prices", "returns")


def framing(close: np.ndarray, name: str, window: int) -> datasets.SeriesSplits:
    """The windows of one framing of the closing prices."""
    if name == "returns":
        return datasets.forecast_windows(100 * np.diff(np.log(close)), window)
    return datasets.forecast_windows(close, window, standardise=name == "scaled prices")


def rmse(prediction, target) -> float:
    return float(np.sqrt(np.mean((np.asarray(prediction) - np.asarray(target)) ** 2)))


def baselines(f: datasets.SeriesSplits, name: str) -> dict[str, float]:
    """Test RMSE of persistence, the zero return (returns only) and the linear AR."""
    units = f.target_scaler.inverse
    truth = units(f.test.targets)
    train_x = np.asarray(f.train.inputs)[:, :, 0]
    design = lambda x: np.concatenate([x, np.ones((len(x), 1))], axis=1)  # noqa: E731
    coef, *_ = np.linalg.lstsq(design(train_x), np.asarray(f.train.targets), rcond=None)
    test_x = np.asarray(f.test.inputs)[:, :, 0]
    out = {
        "persistence": rmse(units(test_x[:, -1:]), truth),
        "linear AR": rmse(units(design(test_x) @ coef), truth),
    }
    if name == "returns":
        out["zero return"] = rmse(np.zeros_like(truth), truth)
    return out


def train_pair(cell: str, f: datasets.SeriesSplits, seed: int, args) -> dict:
    """jaxrnn and its PyTorch copy trained alike; each one's test RMSE, predictions, seconds."""
    import torch

    k_rnn, k_head, k_fit = jax.random.split(jax.random.PRNGKey(seed), 3)
    rnn = jaxrnn.make_rnn(CELLS[cell], 1, args.hidden, key=k_rnn)
    model = jaxrnn.ManyToOne(rnn, jaxrnn.Head(args.hidden, 1, key=k_head))
    net = jaxrnn.to_torch(model)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    x, y = (torch.from_numpy(np.asarray(a)) for a in (f.train.inputs, f.train.targets))
    torch_seconds = sum(
        torch_epoch(net, opt, x, y, args.batch, 1000 * seed + e, torch.nn.functional.mse_loss)
        for e in range(args.epochs)
    )
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    start = time.perf_counter()
    trained, _ = jaxrnn.fit(
        model, jaxrnn.Batches(f.train, args.batch), key=k_fit, loss="mse", optimizer=optimizer, epochs=args.epochs,
        verbose=False,
    )  # fmt: skip
    jax_seconds = time.perf_counter() - start
    truth = f.target_scaler.inverse(f.test.targets)
    jax_pred = f.target_scaler.inverse(np.asarray(jaxrnn.predict(trained, f.test.inputs)))
    net.eval()
    with torch.no_grad():
        torch_pred = f.target_scaler.inverse(net(torch.from_numpy(np.asarray(f.test.inputs))).numpy())
    return {
        "jaxrnn": rmse(jax_pred, truth), "torch": rmse(torch_pred, truth),
        "jaxrnn_seconds": jax_seconds, "torch_seconds": torch_seconds, "jaxrnn_prediction": jax_pred[:, 0].tolist(),
    }  # fmt: skip


def run(close: np.ndarray, dates: list[str], args) -> dict:
    rows = []
    for name in FRAMINGS:
        f = framing(close, name, args.window)
        offset = 1 if name == "returns" else 0  # a return's index t is the price index t + 1
        test_dates = [dates[t + offset] for t in f.target_index[2]]
        row = {"framing": name, "baselines": baselines(f, name), "test_days": len(f.test.targets)}
        row["test_from"], row["test_to"] = test_dates[0], test_dates[-1]
        row["truth"] = f.target_scaler.inverse(f.test.targets)[:, 0].tolist()
        row["cells"] = {}
        for cell in args.cells:
            runs = [train_pair(cell, f, seed, args) for seed in range(args.seeds)]
            row["cells"][cell] = runs
            print(name, cell, [(round(r["jaxrnn"], 4), round(r["torch"], 4)) for r in runs], flush=True)
        rows.append(row)
    return rows


def table(results: dict) -> str:
    lines = [
        "| framing | forecast | test RMSE jaxrnn | test RMSE PyTorch | / persistence (jaxrnn) |",
        "|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        unit = "%" if row["framing"] == "returns" else "$"
        base = row["baselines"]["persistence"]
        for name, value in row["baselines"].items():
            lines.append(f"| {row['framing']} | {name} | {value:.4f} {unit} | | {value / base:.3f} |")
        for cell, runs in row["cells"].items():
            j, t = ([r[k] for r in runs] for k in ("jaxrnn", "torch"))
            spread = lambda v: f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else ""  # noqa: E731
            lines.append(
                f"| {row['framing']} | {cell} | {statistics.mean(j):.4f}{spread(j)} {unit} "
                f"| {statistics.mean(t):.4f}{spread(t)} {unit} | {statistics.mean(j) / base:.3f} |"
            )
    return "\n".join(lines)


def plot(results: dict, folder: str, days: int = 120) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for ax, row in zip(axes, results["rows"][:2]):
        truth = np.asarray(row["truth"])[-days:]
        n = np.arange(len(truth))
        ax.plot(n, truth, "k-", lw=1.5, label="closing price")
        ax.plot(n[1:], truth[:-1], color="0.6", lw=1, label="persistence")
        for i, (cell, runs) in enumerate(row["cells"].items()):
            ax.plot(n, np.asarray(runs[0]["jaxrnn_prediction"])[-days:], color=f"C{i}", lw=1, label=f"{cell} (seed 0)")
        ax.set_title(f"{row['framing']}: the last {days} test days, to {row['test_to']}", fontsize=9)
        ax.set_xlabel("test day")
        ax.set_ylabel("dollars")
        ax.legend(fontsize=7)
    fig.suptitle("MSFT next-day close, jaxrnn models trained on raw and on standardised prices", fontsize=10)
    return save_figure(fig, folder, "forecasts.png")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="msft.csv (python -m jaxrnn.datasets.fetch msft)")
    p.add_argument("--out", required=True)
    p.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=sorted(CELLS))
    p.add_argument("--window", type=int, default=5, help="past days in a window (the notes' 5)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    torch_flush_denormals()
    close = datasets.read_csv_columns(args.data, ["Close"])[:, 0]
    with open(args.data) as f:
        dates = [line.split(",", 1)[0] for line in f][1:]
    results = {"environment": environment(threads=os.cpu_count()), "config": vars(args), "days": len(close)}
    results["rows"] = run(close, dates, args)
    header = (
        f"Next-day forecasts of Microsoft's daily close ({len(close)} days, {dates[0]} to {dates[-1]}), "
        "test RMSE in the target's units, mean ± standard deviation over seeds; jaxrnn and PyTorch from the "
        "same initial weights; PyTorch flushes denormals to zero, as XLA:CPU does."
    )
    write_results(args.out, "stocks", argv, header, results, table(results))
    plot(results, args.out)
    print(table(results))


if __name__ == "__main__":
    main()
