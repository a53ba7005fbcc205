"""The long-range tasks at their published sizes (Arjovsky et al. 2016): the adding problem
at T = 400 and the copy-memory task at T = 100, simple RNN vs LSTM vs GRU over seeds.

    python -m benchmarks.long_range --task adding --lengths 400 --out benchmarks/results/adding_T400
    python -m benchmarks.long_range --task copy_memory --lengths 100 --out benchmarks/results/copy_T100

Each run is ``--steps`` Adam updates of batch 64 (4 epochs), the study's defaults
otherwise (64 units, lr 3e-3, clipping at 1, chrono-initialised gates). Writes the study
report there (results.json, table.md, figures). No timing is asserted.
"""

import argparse

from jaxrnn.study import INITS, StudyConfig, report, run_study


def main() -> None:
    """Run the study at the given task and lengths and write its report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="adding", choices=("adding", "copy_memory"))
    p.add_argument("--lengths", type=int, nargs="+", default=[400])
    p.add_argument("--steps", type=int, default=2000, help="updates per run (batch 64)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--init", default="chrono", choices=INITS)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    epochs = 4
    config = StudyConfig(
        task=args.task,
        lengths=tuple(args.lengths),
        hidden=args.hidden,
        examples=args.steps * 64 // epochs,
        epochs=epochs,
        seeds=args.seeds,
        init=args.init,
    )
    config.validate()
    report.check_writable(args.out)
    results = run_study(config)
    print(f"{report.caption(results)}:\n\n{report.table(results)}")
    for path in report.write_report(results, args.out):
        print("wrote", path)


if __name__ == "__main__":
    main()
