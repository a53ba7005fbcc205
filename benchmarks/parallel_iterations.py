"""Newton iterations to converge against the sequence length T and the largest Lyapunov
exponent lambda_max, for DEER, quasi-DEER, ELK and quasi-ELK; and the forecast against them.

    python -m benchmarks.parallel_iterations                  # the committed study (~15 min)
    python -m benchmarks.parallel_iterations --gains 0.5 3 --lengths 100 1000 --no-trained

Cells: a tanh RNN (H 16, W_hh = gain / sqrt(H) N(0, 1), gains 0.5-3, from contracting to
chaotic) and the LSTM and GRU trained on the adding problem at T = 50 with the study's
default configuration (``jaxrnn.study.StudyConfig``: H 64, chrono initialisation). Inputs:
one sequence (B 1), N(0, 1) for the tanh RNN, an adding-problem sequence for the trained
cells, up to ``--trained-max-length`` steps (their states are 4-8x the tanh RNN's; at
T 1e6 the LSTM's quasi-DEER needed 10 GB). Everything in float64 (tolerance 100 eps), so that a count reflects the
convergence law rather than float32 round-off. lambda_max: QR method on the first
``--probe`` steps (``parallel.largest_lyapunov``). DEER and quasi-DEER: one run at the
longest length gives the count at every length (``parallel.iterations_by_length``,
exact by causality). ELK and quasi-ELK (whose smoother is not causal): one run per
length up to ``--elk-max``. DEER only where T x n^2 stays within ``--dense-limit``
floats (n = H, 2H for the LSTM), ELK where T x n^3 stays within ``--elk-work``. ``> N``: the budget of
N iterations ran out. ``forecast``: ``parallel.predicted_iterations`` from a probe of
the first ``--probe`` steps. Writes parallel_iterations.md and .json.
"""

import argparse
import json
import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from benchmarks.common import environment, write_markdown
from jaxrnn import parallel, study, tasks

METHODS = ("deer", "quasi", "elk", "quasi_elk")


def tanh_cell(H: int, gain: float) -> jaxrnn.SimpleRNNCell:
    """A float64 tanh RNN cell with W_hh = gain / sqrt(H) N(0, 1)."""
    cell = jaxrnn.SimpleRNNCell(4, H, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    W = gain / np.sqrt(H) * jax.random.normal(jax.random.PRNGKey(2), (H, H), jnp.float64)
    return eqx.tree_at(lambda c: c.W_hh, cell, W)


def trained_cell(name: str, T: int) -> tuple[jaxrnn.cells.Cell, jax.Array]:
    """The cell of a ``name`` model trained on the adding problem at the study's longest
    default length, in float64, and one adding sequence (1, T, 2) to drive it."""
    config = study.StudyConfig()
    k_task, k_model, k_init, k_fit = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    task = study.make_task(config, config.lengths[-1], k_task)
    model = study.initial_model(config, task, name, k_model, k_init)
    model, _ = study.train_model(config, task, model, k_fit, verbose=False)
    to64 = lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a  # noqa: E731
    xs = tasks.adding(T, 1, key=jax.random.PRNGKey(5), n_validation=0).train.inputs
    return jax.tree.map(to64, model.rnn.layers[0].cell), xs.astype(jnp.float64)


def measure(label: str, cell, xs, args) -> dict:
    """lambda_max, every method's counts at every length, and the forecasts."""
    started = time.perf_counter()
    lengths = [k for k in args.lengths if k <= xs.shape[1]]
    n = sum(leaf.shape[-1] for leaf in jax.tree.leaves(cell.init_state()))
    dense = [k for k in lengths if k * n * n <= args.dense_limit]
    lam, err = jax.jit(parallel.largest_lyapunov)(cell, xs[:, : args.probe])
    count = jax.jit(parallel.iterations_by_length, static_argnames=("lengths", "method", "max_iter"))
    counts = {}
    for method, ks in (("quasi", tuple(lengths)), ("deer", tuple(dense))):
        got = count(cell, xs[:, : max(ks)], ks, method=method, max_iter=args.max_iter) if ks else []
        counts[method] = dict(zip(ks, (int(c) for c in got)))
    for method in ("elk", "quasi_elk"):
        run = jax.jit(lambda c, x, m=method: parallel.unroll(c, x, method=m, max_iter=args.max_iter)[2])
        counts[method] = {}
        # dense ELK solves an n x n system a step: up to T n^3 = --elk-work
        runnable = [k for k in lengths if method == "quasi_elk" or k * n**3 <= args.elk_work]
        for k in (k for k in runnable if k <= args.elk_max):
            info = run(cell, xs[:, :k])
            counts[method][k] = int(info.iterations) if bool(info.converged) else args.max_iter + 1
    forecasts = {}
    for method in ("deer", "quasi"):
        fc = parallel.forecast(cell, xs[:, : args.probe], method=method, max_iter=args.max_iter)
        forecasts[method] = {k: parallel.predicted_iterations(fc, k) for k in lengths}
    row = {"label": label, "lyapunov": float(lam), "stderr": float(err), "counts": counts, "forecast": forecasts}
    row["seconds"] = time.perf_counter() - started
    return row


def fmt(count, budget: int) -> str:
    """A count, or ``> budget`` where it ran out."""
    if count is None:
        return "-"
    if not np.isfinite(count) or count > budget:
        return f"> {budget}"
    return f"{count:.0f}"


def table(rows: list[dict], lengths, budget: int) -> str:
    """One line per (cell, method): lambda_max, the count at each length (forecast after /)."""
    head = "| cell | lambda_max | method | " + " | ".join(f"T {k:.0e}".replace("e+0", "e") for k in lengths) + " |"
    lines = [head, "|---" * (3 + len(lengths)) + "|"]
    for r in rows:
        lam = f"{r['lyapunov']:+.3f} ± {r['stderr']:.3f}"
        for m in METHODS:
            cells = []
            for k in lengths:
                got = fmt(r["counts"][m].get(k, r["counts"][m].get(str(k))), budget)
                if m in r["forecast"]:
                    pred = r["forecast"][m].get(k, r["forecast"][m].get(str(k)))
                    got += f" / {fmt(pred, budget)}"
                cells.append(got)
            lines.append(f"| {r['label']} | {lam} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args, save) -> list[dict]:
    """Every cell's row, printed and saved (``save(rows)``) as it comes: a long run keeps
    what it measured if it is stopped."""
    T = max(args.lengths)
    xs = jax.random.normal(jax.random.PRNGKey(1), (1, T, 4), jnp.float64)
    rows = []
    cells = [(f"tanh RNN, gain {g}", lambda g=g: (tanh_cell(args.hidden, g), xs)) for g in args.gains]
    if not args.no_trained:
        T_trained = min(T, args.trained_max_length)
        cells += [(f"{n} trained (adding)", lambda n=n: trained_cell(n, T_trained)) for n in ("lstm", "gru")]
    for label, make in cells:
        rows.append(measure(label, *make(), args))
        print(
            table(rows[-1:], args.lengths, args.max_iter).split("\n", 2)[2],
            f"({rows[-1]['seconds']:.0f} s)",
            flush=True,
        )
        save(rows)
    return rows


def write(rows: list[dict], args, argv) -> None:
    """The table (with its command and environment) and the JSON."""
    header = (
        "Newton iterations to converge (float64, tolerance 100 eps), one sequence; each cell: "
        "measured / forecast (from a probe of the first "
        f"{args.probe} steps). `> {args.max_iter}`: the budget ran out. `-`: not run "
        f"(DEER past T x n^2 = {args.dense_limit:.0e} floats, ELK past T x n^3 = {args.elk_work:.0e}, "
        f"ELK and quasi-ELK past T {args.elk_max})."
    )
    write_markdown(args.out, "parallel_iterations", argv, header, table(rows, args.lengths, args.max_iter))
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"environment": environment(threads=os.cpu_count()), "args": vars(args), "rows": rows}, f, indent=1)


def main(argv=None) -> None:
    """Run the study, print each row, write the table and the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gains", type=float, nargs="+", default=[0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10_000, 100_000, 1_000_000])
    p.add_argument("--max-iter", type=int, default=200)
    p.add_argument("--dense-limit", type=float, default=1e8, help="largest T x n^2 for DEER and ELK")
    p.add_argument("--elk-max", type=int, default=1000, help="longest T for ELK and quasi-ELK")
    p.add_argument("--elk-work", type=float, default=1e9, help="largest T x n^3 for ELK")
    p.add_argument("--probe", type=int, default=1000, help="steps for lambda_max and the forecast's probe")
    p.add_argument("--no-trained", action="store_true", help="leave out the trained LSTM and GRU")
    p.add_argument("--trained-max-length", type=int, default=100_000, help="longest T for them (n = 128 and 64)")
    p.add_argument("--out", default="benchmarks/results/parallel_iterations.md")
    args = p.parse_args(argv)
    with jax.enable_x64(True):  # for this run only: the caller's setting is restored after
        run(args, lambda rows: write(rows, args, argv))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
