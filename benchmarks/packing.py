"""Packed rows against padded batches: real steps per second and time to a given accuracy.

    python -m jaxrnn.datasets.fetch vowels data/vowels
    python -m jaxrnn.datasets.fetch austen data/austen
    python -m benchmarks.packing --vowels data/vowels --text data/austen/austen.txt --out benchmarks/results/packing

Three data sets, each trained twice from the same weights with ``jaxrnn.fit``: padded
(``(inputs, targets, lengths)``, batches of ``--batch`` sequences) and packed
(``jaxrnn.datasets.pack`` into rows of ``--row-factor`` times the padded length,
batches of as many rows as hold ``--batch`` sequences on average, so that an update sees about as many
sequences either way):

- **vowels**: JapaneseVowels (270 training utterances, 12 channels, lengths 7-26 of 29
  steps; standardised), a ``ManyToOne`` LSTM of ``--hidden`` units, test accuracy;
- **lines**: the non-empty lines of Jane Austen's novels (lengths 2-76), the first
  ``--lines`` for training and the next tenth of that for validation, a character-level
  ``ManyToMany`` LSTM predicting each next character, validation accuracy;
- **lognormal**: ``--synthetic`` sequences of 4 Gaussian channels, lengths drawn from a
  lognormal (median 40, sigma 0.9, cut to [2, ``--longest``]), labelled by the sign of channel 0's
  mean over the sequence, a ``ManyToOne`` GRU, accuracy on a held-out fifth.

Throughput: the real steps (sum of lengths) of an epoch over its wall time, the median
over the epochs after the first (which compiles), of runs without validation, the two
layouts interleaved ``--rounds`` times. Time to accuracy: a run with validation after
every epoch, ``--epochs`` epochs; the first epoch at or above ``target``, and the epoch
times summed up to it, the first epoch's replaced by the median of the others (no
compile time). Adam, learning rate ``--lr``, gradient norm clipped at 1 (fit's default
optimizer with that rate).
"""

import argparse
import os
import statistics

import jax
import numpy as np

import jaxrnn
from benchmarks.common import write_results
from jaxrnn import datasets

TARGETS = {"vowels": 0.97, "lines": 0.50, "lognormal": 0.95}


def vowels(folder: str):
    train, _ = datasets.read_ts(os.path.join(folder, "JapaneseVowels_TRAIN.ts"))
    test, _ = datasets.read_ts(os.path.join(folder, "JapaneseVowels_TEST.ts"))
    scaler = datasets.fit_scaler(train.inputs, train.lengths)
    scale = lambda d: d._replace(inputs=datasets.standardise(d.inputs, d.lengths, scaler))  # noqa: E731
    return scale(train), scale(test), "many_to_one", jaxrnn.LSTMCell


def lines(path: str, n: int):
    with open(path, encoding="utf-8") as f:
        text = [line.rstrip("\n") for line in f if line.strip()]
    vocab = sorted(set("".join(text[: n + n // 10])))
    ids = {c: i for i, c in enumerate(vocab)}

    def encode(rows):
        T = max(len(r) for r in rows) - 1
        x = np.zeros((len(rows), T, len(vocab)), np.float32)
        y = np.zeros((len(rows), T), np.int32)
        for i, r in enumerate(rows):
            codes = [ids[c] for c in r]
            x[i, np.arange(len(codes) - 1), codes[:-1]] = 1
            y[i, : len(codes) - 1] = codes[1:]
        return jaxrnn.Data(x, y, np.array([len(r) - 1 for r in rows], np.int32))

    return encode(text[:n]), encode(text[n : n + n // 10]), "many_to_many", jaxrnn.LSTMCell


def lognormal(n: int, longest: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(40), 0.9, n)), 2, longest).astype(np.int32)
    x = rng.normal(size=(n, int(lengths.max()), 4)).astype(np.float32)
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0
    y = (x[..., 0].sum(1) > 0).astype(np.int32)
    cut = n - n // 5
    part = lambda s: jaxrnn.Data(x[s], y[s], lengths[s])  # noqa: E731
    return part(slice(0, cut)), part(slice(cut, n)), "many_to_one", jaxrnn.GRUCell


def model_for(kind: str, cell, train: jaxrnn.Data, classes: int, hidden: int, seed: int):
    k1, k2 = jax.random.split(jax.random.key(seed))
    rnn = jaxrnn.make_rnn(cell, train.inputs.shape[2], hidden, key=k1)
    head = jaxrnn.Head(hidden, classes, key=k2)
    return (jaxrnn.ManyToOne if kind == "many_to_one" else jaxrnn.ManyToMany)(rnn, head)


def layouts(train: jaxrnn.Data, test: jaxrnn.Data, batch: int, factor: int) -> dict:
    """``{layout: (train data, validation data, batch size)}``, packed rows of ``factor``
    times the padded length, batched to hold about ``batch`` sequences."""
    L = factor * max(train.inputs.shape[1], test.inputs.shape[1])
    packed = datasets.pack(train, row_length=L)
    per_row = len(packed.lengths) / len(packed.inputs)
    return {
        "padded": (train, test, batch),
        "packed": (packed, datasets.pack(test, row_length=L), max(1, round(batch / per_row))),
    }


def run(name: str, data, args) -> dict:
    train, test, kind, cell = data
    classes = int(np.max(train.targets)) + 1
    real = int(np.sum(train.lengths))
    steps = int(np.prod(train.inputs.shape[:2]))
    loss = jaxrnn.Loss("cross_entropy", metrics=["accuracy"])
    options = dict(loss=loss, optimizer=jaxrnn.default_optimizer(args.lr), verbose=0)
    model = model_for(kind, cell, train, classes, args.hidden, args.seed)
    parts = layouts(train, test, args.batch, args.row_factor)
    epochs = {layout: [] for layout in parts}
    for _ in range(args.rounds):  # throughput: the layouts interleaved
        for layout, (d, _, b) in parts.items():
            _, h = jaxrnn.fit(
                model, jaxrnn.Batches(d, b), epochs=args.timing_epochs, key=jax.random.key(args.seed), **options
            )
            epochs[layout] += h.epoch_seconds[1:]
    out = {"real_steps": real, "padded_steps": steps, "padding": 1 - real / steps}
    out["fill_packed"] = parts["packed"][0].fill
    out["rows_packed"] = len(parts["packed"][0].inputs)
    for layout, (d, v, b) in parts.items():
        seconds = statistics.median(epochs[layout])
        _, h = jaxrnn.fit(
            model, jaxrnn.Batches(d, b), epochs=args.epochs, validation=v, key=jax.random.key(args.seed), **options
        )
        accuracy = [e["val_accuracy"] for e in h.epochs]
        times = [statistics.median(h.epoch_seconds[1:])] + h.epoch_seconds[1:]
        reached = next((i for i, a in enumerate(accuracy) if a >= TARGETS[name]), None)
        out[layout] = {
            "batch": b,
            "epoch_seconds": seconds,
            "real_steps_per_second": real / seconds,
            "val_accuracy": accuracy,
            "epoch_to_target": None if reached is None else reached + 1,
            "seconds_to_target": None if reached is None else float(sum(times[: reached + 1])),
        }
    out["speedup"] = out["padded"]["epoch_seconds"] / out["packed"]["epoch_seconds"]
    return out


def table(results: dict) -> str:
    rows = [
        "| data | padding | packed fill | padded steps/s | packed steps/s | speed-up | target | padded: epochs, s "
        "| packed: epochs, s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def reach(x: dict) -> str:
        if x["epoch_to_target"] is None:
            return "not reached"
        return f"{x['epoch_to_target']}, {x['seconds_to_target']:.1f}"

    for name, r in results["data"].items():
        rows.append(
            f"| {name} | {r['padding']:.0%} | {r['fill_packed']:.1%} | {r['padded']['real_steps_per_second']:,.0f} "
            f"| {r['packed']['real_steps_per_second']:,.0f} | {r['speedup']:.2f}x | {TARGETS[name]:.2f} "
            f"| {reach(r['padded'])} | {reach(r['packed'])} |"
        )
    return "\n".join(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vowels", help="folder of JapaneseVowels_TRAIN.ts / _TEST.ts")
    p.add_argument("--text", help="austen.txt")
    p.add_argument("--lines", type=int, default=4000, help="training lines of the text")
    p.add_argument("--synthetic", type=int, default=2560, help="lognormal sequences (a fifth held out); 0: none")
    p.add_argument("--longest", type=int, default=400, help="the lognormal lengths' cut")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=32, help="sequences per update (on average, packed)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--row-factor", type=int, default=1, help="packed rows this many times the padded length")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the time-to-accuracy runs")
    p.add_argument("--timing-epochs", type=int, default=4, help="epochs per throughput run (the first compiles)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    sets = {}
    if args.vowels:
        sets["vowels"] = vowels(args.vowels)
    if args.text:
        sets["lines"] = lines(args.text, args.lines)
    if args.synthetic:
        sets["lognormal"] = lognormal(args.synthetic, args.longest, args.seed)
    results = {"args": vars(args), "data": {name: run(name, data, args) for name, data in sets.items()}}
    write_results(
        args.out,
        "packing",
        argv,
        "Packed rows against padded batches, one jaxrnn.fit each from the same weights: real steps per "
        "second (median epoch after the first, runs interleaved) and the epochs and seconds to the target "
        "validation accuracy (the first epoch's compile left out).",
        results,
        table(results),
    )
    print(table(results))


if __name__ == "__main__":
    main()
