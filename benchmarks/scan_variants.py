"""A/B of the layer's CPU choices, in one process: each variant undoes one choice of jaxrnn.

    python -m benchmarks.scan_variants                       # LSTM and GRU, T 64 and 256
    python -m benchmarks.scan_variants --cells lstm --lengths 16 64 --out /tmp/variants.md

Variants (one layer, B 32, F 128, H 256 by default):
- ``current``: what ``jaxrnn.Recurrent`` does now;
- ``bias add``: ``b_xh`` added after the input GEMM instead of riding in it;
- ``two cotangents``: the fused backward stacks d(xw) and d(hw) apart even where the
  gates read only their sum (equal cotangents; LSTM and simple RNN);
- ``whole T``: on the CPU the layer projects and scans all T steps at once instead of in
  chunks of about 8 MiB of projected inputs (``jaxrnn.layers.cpu_chunks``);
- ``lax.scan``: the plain ``lax.scan`` instead of the read-ahead scan (and the bias added
  after the GEMM: the form before either change);
- ``plain``: no fast path at all (``Engine.plain()``): ``cell.step`` in ``lax.scan``,
  differentiated by autodiff;
- ``unroll 2`` / ``unroll 4``: ``lax.scan``'s unroll.

A variant is an ``Engine`` setting of the layer (``jaxrnn.layers.engine``) and its
``unroll``, so the rest is the library's own code. Repeats are interleaved across variants
(this machine drifts by 10-30% over minutes); the table gives the median and the ratio
to ``current``.
"""

import argparse
import statistics

import jax

import jaxrnn
from benchmarks.common import compile_pair, timed, write_markdown
from jaxrnn.cells import CELLS
from jaxrnn.layers import Engine

VARIANTS = {  # name: (unroll, engine)
    "current": (1, Engine()),
    "bias add": (1, Engine(bias_column=False)),
    "two cotangents": (1, Engine(shared_cotangent=False)),
    "whole T": (1, Engine(cpu_chunks=False)),
    "lax.scan": (1, Engine(bias_column=False, read_ahead=False)),
    "plain": (1, Engine.plain()),
    "unroll 2": (2, Engine()),
    "unroll 4": (4, Engine()),
}


def measure(cell: str, B: int, T: int, F: int, H: int, repeats: int, rounds: int) -> dict:
    """{variant: {mode: median seconds}} for one cell and length."""
    device = jax.devices("cpu")[0]
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    built = {}
    for name, (unroll, engine) in VARIANTS.items():
        layer = jaxrnn.Recurrent(CELLS[cell](F, H, key=jax.random.PRNGKey(0)), unroll=unroll, engine=engine)
        built[name] = compile_pair(lambda m, x: m(x)[0], layer, x, device)
    times = {name: {mode: [] for mode in pair} for name, pair in built.items()}
    for _ in range(rounds):
        for name, pair in built.items():
            for mode, (_, call, _) in pair.items():
                times[name][mode].extend(timed(call, repeats))
    return {name: {mode: statistics.median(t) for mode, t in modes.items()} for name, modes in times.items()}


def main(argv=None) -> None:
    """Measure and write the markdown table (and print it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=["lstm", "gru"])
    p.add_argument("--lengths", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per variant per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/scan_variants.md")
    args = p.parse_args(argv)
    names = list(VARIANTS)
    header = [f"{n} ms" for n in names] + [f"{n}/current" for n in names[1:]]
    lines = ["| cell | T | mode | " + " | ".join(header) + " |", "|" + "---|" * (3 + len(header))]
    for cell in args.cells:
        for T in args.lengths:
            res = measure(cell, args.batch, T, args.input, args.hidden, args.repeats, args.rounds)
            for mode in ("fwd", "fwdbwd"):
                ms = [1e3 * res[n][mode] for n in names]
                ratios = [m / ms[0] for m in ms[1:]]
                lines.append(
                    f"| {cell} | {T} | {mode} | "
                    + " | ".join(f"{m:.2f}" for m in ms)
                    + " | "
                    + " | ".join(f"{r:.2f}" for r in ratios)
                    + " |"
                )
                print(lines[-1], flush=True)
    method = (
        f"B {args.batch}, F {args.input}, H {args.hidden}; median of {args.rounds} rounds x {args.repeats} calls, "
        "interleaved; warm-up and compile excluded."
    )
    write_markdown(args.out, "scan_variants", argv, method, "\n".join(lines))


if __name__ == "__main__":
    main()
