"""Cost of all step Jacobians of a trajectory against the forward pass (issue: spectra).

    python -m benchmarks.jacobian_cost [--T 1000] [--hidden 128]

For each cell: the median time of the forward pass over one sequence (T steps), of
``spectra.step_jacobians`` (jacfwd of the step, vmapped over time: T x n x n), and of the
log singular values of every lag; compile times apart. Writes a markdown table.
"""

import argparse
import os
import statistics
import time

import jax

import jaxrnn
from jaxrnn import spectra
from jaxrnn.cells import CELLS


def median_time(fn, repeats=5):
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure and print/write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--out", default="benchmarks/results/jacobian_cost.md")
    args = p.parse_args()
    key = jax.random.PRNGKey(0)
    xs = jax.random.normal(key, (args.T, args.input))
    rows = [
        f"T = {args.T}, H = {args.hidden}, input {args.input}, one sequence, {jax.devices()[0]}, "
        f"jax {jax.__version__}; `python -m benchmarks.jacobian_cost`\n",
        "| cell | n | forward ms | all step Jacobians ms | ratio | log svals of every lag ms |",
        "|---" * 6 + "|",
    ]
    forward = jax.jit(lambda c, x: jaxrnn.Recurrent(c)(x[None])[0])
    jac = jax.jit(spectra.step_jacobians)
    svals = jax.jit(spectra.log_singular_values_vs_lag)
    for name, make in CELLS.items():
        cell = make(args.input, args.hidden, key=key)
        t_fwd = median_time(lambda c=cell: forward(c, xs))
        t_jac = median_time(lambda c=cell: jac(c, xs))
        J = jac(cell, xs)
        t_sv = median_time(lambda J=J: svals(J), repeats=3)
        rows.append(
            f"| {name} | {J.shape[1]} | {1e3 * t_fwd:.2f} | {1e3 * t_jac:.2f} | {t_jac / t_fwd:.1f} | "
            f"{1e3 * t_sv:.0f} |"
        )
        print(rows[-1], flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
