"""The adding problem at T = 100 and 200: LSTM and GRU below MSE 0.01, the tanh RNN at the
1/6 baseline (the pattern of Arjovsky et al. 2016, Fig. 2).

    python -m benchmarks.adding_problem [--lengths 100 200] [--steps 3000] [--out benchmarks/results/adding]

Writes the study report there (results.json, table.md, figures). No timing is asserted.
"""

import argparse

from jaxrnn import report
from jaxrnn.study import StudyConfig, run_study


def main() -> None:
    """Run the study at the given lengths and write its report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[100, 200])
    p.add_argument("--steps", type=int, default=3000, help="updates per run (batch 64)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--out", default="benchmarks/results/adding")
    args = p.parse_args()
    epochs = 4
    config = StudyConfig(
        task="adding",
        lengths=tuple(args.lengths),
        hidden=args.hidden,
        examples=args.steps * 64 // epochs,
        epochs=epochs,
        learning_rate=3e-3,
    )
    report.check_writable(args.out)
    results = run_study(config, progress=False)
    print(report.table(results))
    for path in report.write_report(results, args.out):
        print("wrote", path)


if __name__ == "__main__":
    main()
