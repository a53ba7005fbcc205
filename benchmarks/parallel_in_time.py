"""Parallel-in-time evaluation (``jaxrnn.parallel.unroll``) against the sequential scan:
wall time and Newton iterations per (cell, H, batch, T) and method.

    python -m benchmarks.parallel_in_time [--cells gru rnn] [--hidden 4 16 64] [--batch 1 16]
        [--lengths 1000 10000 100000] [--out benchmarks/results/parallel_in_time_cpu.md]
        [--costs jaxrnn/parallel/iteration_cost.json]   # write this backend's costs for recommend
    python -m benchmarks.parallel_in_time --merge benchmarks/results/gpu/parallel.json \
        --costs jaxrnn/parallel/iteration_cost.json     # the costs of an earlier run (the GPU's)

Forward pass only, float32, compiled first (compile time apart), then ``--repeats``
rounds that each time every implementation once (interleaved, so drift hits all
alike); the median per implementation. A sample is the mean of as many calls as make
the sequential scan take ``MIN_SAMPLE_S`` (the same count for every method): single
calls of 0.1-1 ms gave medians 0.6-1.4x apart for identical programs. ``speed-up`` =
sequential time / parallel time (> 1: parallel wins). Dense methods (deer, elk) are skipped where their Jacobians would
exceed ``--dense-limit`` floats (T x B x n^2), and a whole (H, B, T) where T x B x H
exceeds ``--work-limit`` (every method keeps several (T, B, n) arrays; the largest
points of the issue's grid would need hundreds of GB). ``auto``: ``unroll(method="auto")``
with a quasi-DEER forecast probed on the first ``--probe`` steps of up to 4 of the
sequences (probe time apart); its column says what it chose. Weights: the cells' default
initialisation (contracting at these sizes). No timing is asserted anywhere.

One Newton iteration's cost, for ``parallel.recommend``: per method and (state size n,
batch B), the smallest over T of (method time / iterations) / sequential time (the
point most favourable to parallel; runs that fell back are left out). ``--costs PATH``
merges this backend's costs into that JSON file (``jaxrnn/parallel/iteration_cost.json``
is the one the library reads). The JSON written beside ``--out`` is rewritten after
every measured point, so a run cut short keeps what it measured.
"""

import argparse
import json
import math
import os
import statistics
import time

import jax

import jaxrnn
from benchmarks.common import environment, write_markdown
from jaxrnn import parallel
from jaxrnn.cells import CELLS

MIN_SAMPLE_S = 0.02  # seconds of sequential work per timed sample


def measure(cell_name: str, H: int, B: int, T: int, methods, repeats: int, dense_limit: float, probe: int) -> dict:
    """Median times (s) of the sequential layer and each method, and each method's iterations
    ("auto": what it chose, from a quasi-DEER forecast on the first ``probe`` steps)."""
    cell = CELLS[cell_name](4, H, key=jax.random.PRNGKey(0))
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, 4))
    n = H * (2 if cell_name == "lstm" else 1)
    runs = {"sequential": jax.jit(lambda c, x: jaxrnn.Recurrent(c)(x)[0])}
    info = {}
    for m in methods:
        if m in ("deer", "elk") and T * B * n * n > dense_limit:
            continue
        kwargs = {}
        if m == "auto":
            kwargs["forecast"] = parallel.forecast(cell, xs[:4, :probe], method="quasi")
            info[m] = {"chose": parallel.recommend(kwargs["forecast"], T, B)}
        run = lambda c, x, m=m, kw=kwargs: parallel.unroll(c, x, method=m, **kw)  # noqa: E731
        got = jax.jit(lambda c, x, run=run: run(c, x)[2])(cell, xs)  # the iterations, apart from the timing
        info.setdefault(m, {}).update(iterations=int(got.iterations), converged=bool(got.converged))
        runs[m] = jax.jit(lambda c, x, run=run: run(c, x)[0])  # the outputs alone, as the sequential run
    for fn in runs.values():
        jax.block_until_ready(fn(cell, xs))  # compile and warm up
    start = time.perf_counter()
    jax.block_until_ready(runs["sequential"](cell, xs))
    calls = max(1, math.ceil(MIN_SAMPLE_S / (time.perf_counter() - start)))  # per sample, for every method
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                jax.block_until_ready(fn(cell, xs))
            times[name].append((time.perf_counter() - start) / calls)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {"cell": cell_name, "H": H, "B": B, "T": T, "seconds": median, "info": info}


def table(rows: list[dict], methods) -> str:
    """Markdown: sequential ms, then per method ms, iterations and speed-up."""
    head = (
        "| cell | H | B | T | sequential ms | " + " | ".join(f"{m} ms (iterations, speed-up)" for m in methods) + " |"
    )
    lines = [head, "|---" * (5 + len(methods)) + "|"]
    for r in rows:
        seq = r["seconds"]["sequential"]
        cells = []
        for m in methods:
            if m not in r["seconds"]:
                cells.append("skipped (dense too large)")
                continue
            i = r["info"][m]
            it = f"{i['iterations']}" + ("" if i["converged"] else ", fell back")
            if m == "auto":
                it = f"chose {i['chose']}"
            cells.append(f"{1e3 * r['seconds'][m]:.1f} ({it}, {seq / r['seconds'][m]:.2f}x)")
        lines.append(f"| {r['cell']} | {r['H']} | {r['B']} | {r['T']} | {1e3 * seq:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def costs(rows: list[dict]) -> dict[str, list[list[float]]]:
    """{method: [[n, B, cost], ...]}: one iteration's time over one sequential pass, the
    smallest over T, for every (n, B) measured (the form ``iteration_cost.json`` holds)."""
    best: dict[str, dict[tuple[int, int], float]] = {}
    for r in rows:
        n = r["H"] * (2 if r["cell"] == "lstm" else 1)
        for m in ("deer", "quasi"):  # the methods recommend costs
            info = r["info"].get(m)
            if m not in r["seconds"] or not info or not info["converged"] or info["iterations"] < 1:
                continue
            cost = r["seconds"][m] / info["iterations"] / r["seconds"]["sequential"]
            table = best.setdefault(m, {})
            table[n, r["B"]] = min(cost, table.get((n, r["B"]), float("inf")))
    return {m: [[n, B, round(c, 4)] for (n, B), c in sorted(t.items())] for m, t in best.items()}


def merge_costs(path: str, backend: str, measured: dict[str, list[list[float]]]) -> None:
    """Put ``measured`` (``costs``' form) into the cost file at ``path`` as ``backend``'s
    costs, replacing the earlier ones of that backend and method."""
    table = {}
    if os.path.exists(path):
        with open(path) as f:
            table = json.load(f)
    table.setdefault(backend, {}).update(measured)
    lines = []  # one [n, B, cost] row a line
    for b, methods in sorted(table.items()):
        rows = [
            f'  "{m}": [\n' + ",\n".join(f"   {json.dumps(row)}" for row in points) + "\n  ]"
            for m, points in sorted(methods.items())
        ]
        lines.append(f' "{b}": {{\n' + ",\n".join(rows) + "\n }")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def main(argv=None) -> None:
    """Measure the grid, print and write the table (and the JSON beside it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", default=["gru", "rnn"], choices=list(CELLS))
    p.add_argument("--hidden", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000, 100000])
    every = [*parallel.METHODS, "auto"]
    p.add_argument("--methods", nargs="+", default=every, choices=every)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dense-limit", type=float, default=2e8, help="largest T x B x n^2 for deer and elk")
    p.add_argument("--work-limit", type=float, default=2e7, help="largest T x B x H measured (memory, time)")
    p.add_argument("--probe", type=int, default=1000, help="steps of the forecast that auto follows")
    p.add_argument("--out", default="benchmarks/results/parallel_in_time_cpu.md")
    p.add_argument("--lengths-first", action="store_true", help="loop over --lengths outermost, in the order given")
    p.add_argument("--costs", help="merge this run's per-iteration costs into this JSON file")
    p.add_argument("--merge", help="take the costs from this earlier run's JSON instead of measuring")
    args = p.parse_args(argv)
    if args.merge:
        if not args.costs:
            p.error("--merge needs --costs (the file to merge into)")
        with open(args.merge) as f:
            earlier = json.load(f)
        earlier = earlier.get("results", earlier)  # benchmarks.gpu's stage record holds the run's JSON
        merge_costs(args.costs, earlier["backend"], earlier["iteration_cost"])
        print(f"merged the {earlier['backend']} costs of {args.merge} into {args.costs}")
        return
    backend = jax.default_backend()
    grid = [(c, H, B, T) for c in args.cells for H in args.hidden for B in args.batch for T in args.lengths]
    if args.lengths_first:
        grid.sort(key=lambda point: args.lengths.index(point[3]))
    header = (
        "Forward pass, float32, median of interleaved repeats, compile apart; speed-up = "
        "sequential / parallel (> 1: parallel wins)."
    )
    rows = []
    for c, H, B, T in grid:
        if T * B * H > args.work_limit:
            continue
        rows.append(measure(c, H, B, T, args.methods, args.repeats, args.dense_limit, args.probe))
        print(table(rows[-1:], args.methods).splitlines()[-1], flush=True)
        result = {"environment": environment(threads=os.cpu_count()), "backend": backend, "rows": rows}
        result["iteration_cost"] = costs(rows)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(result, f, indent=1)
    write_markdown(args.out, "parallel_in_time", argv, header, table(rows, args.methods))
    if args.costs:
        merge_costs(args.costs, backend, costs(rows))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
