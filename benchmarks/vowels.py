"""JapaneseVowels (UEA/UCR; Kudo, Toyama and Shimbo 1999): nine speakers told apart from 12
LPC cepstrum coefficients over 7-29 frames, with exact lengths against zero padding read as
data, jaxrnn and PyTorch on the same weights.

    python -m jaxrnn.datasets.fetch vowels data/vowels
    python -m benchmarks.vowels --data data/vowels --out benchmarks/results/vowels

Inputs are standardised per channel with the training set's statistics over valid frames
(``jaxrnn.datasets.fit_scaler``); padding stays zero. For each cell (simple RNN, LSTM, GRU;
H 64) and seed, one ``ManyToOne`` is built and copied into PyTorch (``jaxrnn.to_torch``),
and both train from it with Adam (3e-3) after clipping the gradient norm at 1, batches of
32, 60 epochs (540 updates), in two ways:

- ``lengths``: trained and tested with the lengths (jaxrnn: ``(inputs, targets, lengths)``;
  PyTorch: ``pack_padded_sequence``): every padded frame is skipped;
- ``padding``: trained and tested without them: the zeros after each utterance are read as
  frames (the state after the last padded frame classifies).

The ``lengths`` models are also tested without lengths (``lengths, tested without``), the
mistake jaxrnn now warns of. Writes results.json and results.md.
"""

import argparse
import json
import os
import statistics
import time
import warnings

import jax
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment, torch_head, write_results
from jaxrnn import datasets
from jaxrnn.cells import CELLS
from jaxrnn.train.lengths import MissingLengthsWarning

MODES = ("lengths", "padding")


def load(folder: str) -> tuple[jaxrnn.Data, jaxrnn.Data, int]:
    train, classes = datasets.read_ts(os.path.join(folder, "JapaneseVowels_TRAIN.ts"))
    test, _ = datasets.read_ts(os.path.join(folder, "JapaneseVowels_TEST.ts"))
    scaler = datasets.fit_scaler(train.inputs, train.lengths)
    scale = lambda d: d._replace(inputs=datasets.standardise(d.inputs, d.lengths, scaler))  # noqa: E731
    return scale(train), scale(test), len(classes)


def torch_run(model, train: jaxrnn.Data, test: jaxrnn.Data, mode: str, args, seed: int) -> tuple[float, float]:
    """PyTorch from ``model``'s weights: (test accuracy, seconds of training)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(seed)
    rnn = jaxrnn.to_torch(model.rnn, batch_first=True)
    head = torch_head(model.head)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)

    def logits(x, n):
        if mode == "lengths":
            _, h = rnn(pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False))
            h = h[0] if isinstance(h, tuple) else h
            return head(h[-1])
        out, _ = rnn(x)
        return head(out[:, -1])

    x, y, n = (torch.tensor(np.asarray(a)) for a in train[:3])
    y = y.long()
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    for _ in range(args.epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), args.batch):
            idx = order[i : i + args.batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits(x[idx], n[idx]), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    seconds = time.perf_counter() - start
    tx, ty, tn = (torch.tensor(np.asarray(a)) for a in test[:3])
    with torch.no_grad():
        right = (logits(tx, tn).argmax(1) == ty.long()).float().mean().item()
    return right, seconds


def jax_run(model, train, test, mode: str, args, seed: int) -> dict:
    """jaxrnn: test accuracy (and, for ``lengths``, tested without them) and seconds."""
    data = train if mode == "lengths" else train._replace(lengths=None)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    start = time.perf_counter()
    trained, _ = jaxrnn.fit(
        model, jaxrnn.Batches(data, args.batch), key=jax.random.PRNGKey(100 + seed), loss="cross_entropy",
        optimizer=optimizer, epochs=args.epochs, verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    scored = test if mode == "lengths" else test._replace(lengths=None)
    out = {"accuracy": jaxrnn.evaluate(trained, scored, loss="cross_entropy")["accuracy"], "seconds": seconds}
    if mode == "lengths":
        unmasked = jaxrnn.evaluate(trained, test._replace(lengths=None), loss="cross_entropy")
        out["accuracy_without_lengths"] = unmasked["accuracy"]
    return out


def run(args) -> dict:
    with warnings.catch_warnings():
        # the padding rows and the "tested without" row make on purpose the mistake jaxrnn warns of
        warnings.simplefilter("ignore", MissingLengthsWarning)
        return _run(args)


def _run(args) -> dict:
    train, test, n_classes = load(args.data)
    results = {"environment": environment(threads=os.cpu_count()), "config": vars(args), "rows": []}
    for cell in args.cells:
        for seed in range(args.seeds):
            k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
            model = jaxrnn.ManyToOne(
                jaxrnn.make_rnn(CELLS[cell], train.inputs.shape[-1], args.hidden, key=k1),
                jaxrnn.Head(args.hidden, n_classes, key=k2),
            )
            for mode in MODES:
                jax_out = jax_run(model, train, test, mode, args, seed)
                torch_acc, torch_s = torch_run(model, train, test, mode, args, seed)
                row = {"cell": cell, "seed": seed, "mode": mode, "jaxrnn": jax_out}
                row["torch"] = {"accuracy": torch_acc, "seconds": torch_s}
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
    return results


def _stat(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def table(results: dict) -> str:
    rows = ["| cell | trained / tested | jaxrnn accuracy % | PyTorch accuracy % | jaxrnn s | PyTorch s |"]
    rows.append("|---|---|---|---|---|---|")
    for cell in results["config"]["cells"]:
        for mode in MODES:
            sel = [r for r in results["rows"] if r["cell"] == cell and r["mode"] == mode]
            j, t = [r["jaxrnn"] for r in sel], [r["torch"] for r in sel]
            accuracy = [_stat([x["accuracy"] for x in runs]) for runs in (j, t)]
            seconds = [statistics.median(x["seconds"] for x in runs) for runs in (j, t)]
            rows.append(f"| {cell} | {mode} | {accuracy[0]} | {accuracy[1]} | {seconds[0]:.1f} | {seconds[1]:.1f} |")
            if mode == "lengths":
                unmasked = _stat([x["accuracy_without_lengths"] for x in j])
                rows.append(f"| {cell} | lengths, tested without | {unmasked} | | | |")
    return "\n".join(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of JapaneseVowels_TRAIN.ts / _TEST.ts")
    p.add_argument("--out", default="benchmarks/results/vowels")
    p.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=sorted(CELLS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args(argv)
    results = run(args)
    header = (
        "JapaneseVowels test accuracy (370 utterances), mean ± standard deviation over seeds; "
        "seconds: median training time of a run (jaxrnn's includes compiling)."
    )
    write_results(args.out, "vowels", argv, header, results, table(results))
    print(table(results))


if __name__ == "__main__":
    main()
