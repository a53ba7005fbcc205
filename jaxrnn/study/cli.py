"""``python -m jaxrnn`` / ``jaxrnn``: the study (default), train, generate, tasks.

Every user error is one line on stderr and exit status 2, found before any training.

The command keeps JAX's persistent compilation cache on, so that a second run of the same
model and shapes compiles (almost) nothing: in ``$JAX_COMPILATION_CACHE_DIR`` when that is
set, else in ``$XDG_CACHE_HOME/jaxrnn/xla`` (``~/.cache/jaxrnn/xla``). A cached program is
the one XLA compiled: results are bit for bit those of a cold run.
"""

import argparse
import json
import math
import os
import sys

TASK_HELP = {  # what the command line says of each of jaxrnn.tasks.TASKS
    "adding": "adding problem (Hochreiter & Schmidhuber 1997), --length T",
    "copy_memory": "copy memory task (Arjovsky et al. 2016), --length T",
    "france": "'I grew up in France ... I speak fluent ___', --distance, --length",
    "next_word": "next word of the example sentences",
    "stock_prices": "stock price, 5 days -> day 6",
    "characters": "character language model on Python's own source (stateful TBPTT)",
    "digits": "scikit-learn digits read row by row (needs jaxrnn[data])",
    "reverse_digits": "encoder-decoder: reverse a digit string, --length digits",
}
ALIASES = {"copy": "copy_memory", "stock": "stock_prices", "chars": "characters", "reverse": "reverse_digits"}


def task_name(name: str) -> str:
    """The jaxrnn.tasks name of a CLI task name (the short names are aliases)."""
    name = ALIASES.get(name, name)
    if name not in TASK_HELP:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASK_HELP)}")
    return name


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"jaxrnn: error: {message}", file=sys.stderr)
    return 2


class _Help(argparse.HelpFormatter):
    """Shows each option's default, where it has one."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or action.help is None:
            return action.help
        return f"{action.help} (default: {action.default})"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxrnn", description=__doc__.splitlines()[0], formatter_class=_Help)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    add = lambda name, **kw: sub.add_parser(name, formatter_class=_Help, **kw)  # noqa: E731

    s = add("study", help="simple RNN vs LSTM vs GRU at growing distances (the default)")
    from jaxrnn.study import StudyConfig

    quick, full = StudyConfig(), StudyConfig.full()

    def study_default(field: str) -> str:
        shown = lambda v: " ".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
        a, b = shown(getattr(quick, field)), shown(getattr(full, field))
        return f" (default: {a}" + ("" if a == b else f"; with --full: {b}") + ")"

    s.add_argument("--task", default="adding", help="adding, copy_memory or france")
    s.add_argument("--lengths", type=int, nargs="+", help="sequence lengths / distances" + study_default("lengths"))
    s.add_argument("--cells", nargs="+", help="any of rnn lstm gru" + study_default("cells"))
    s.add_argument("--full", action="store_true", help="the published-size study (hours on a CPU)")
    s.add_argument("--hidden", type=int, help="hidden units" + study_default("hidden"))
    s.add_argument("--examples", type=int, help="training sequences per length" + study_default("examples"))
    s.add_argument("--epochs", type=int, help="epochs per run" + study_default("epochs"))
    s.add_argument(
        "--seeds",
        type=int,
        help="runs per cell and length, each with its own data and weights" + study_default("seeds"),
    )
    s.add_argument(
        "--init",
        choices=("chrono", "default"),
        help="gate biases of the LSTM and GRU: chrono-initialised for the sequence length, or the cells' own"
        + study_default("init"),
    )
    s.add_argument("--seed", type=int, help="the seed every run's keys come from" + study_default("seed"))
    s.add_argument("--report", default="report", help="folder for results.json, table.md and figures")
    s.add_argument("--force", action="store_true", help="write into a report folder that holds other files")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    t = add("train", help="train one cell on one task and save a checkpoint")
    t.add_argument("--task", required=True, help=", ".join(TASK_HELP) + " (short: " + ", ".join(ALIASES) + ")")
    t.add_argument("--cell", default="lstm", help="rnn, lstm or gru")
    t.add_argument("--length", type=int, help="task length (T; digits for reverse_digits; sentence length for france)")
    t.add_argument("--distance", type=int, help="france: steps from the cue to the answer (default 10)")
    t.add_argument("--hidden", type=int, default=64, help="hidden units per layer")
    t.add_argument("--layers", type=int, default=1, help="stacked recurrent layers")
    t.add_argument("--epochs", type=int, default=5, help="passes over the training data")
    t.add_argument("--batch-size", type=int, default=32, help="sequences per update (characters: its streams)")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate (gradients clipped to norm 1)")
    t.add_argument("--tbptt", type=int, help="truncated BPTT window (default 100 for characters)")
    t.add_argument("--seed", type=int, default=0, help="the seed of every random draw")
    t.add_argument("--checkpoint", default="jaxrnn.ckpt", help="file the model is saved to")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    g = add("generate", help="sample text from a character model trained with 'train --task characters'")
    g.add_argument("--checkpoint", default="jaxrnn.ckpt", help="a checkpoint of 'train --task characters'")
    g.add_argument("--prompt", default="def ", help="text the sample starts from")
    g.add_argument("--length", type=int, default=300, help="characters to generate")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--seed", type=int, default=0, help="the sampling seed")

    add("tasks", help="list the tasks")
    return p


def _make_task(name: str, length: int | None, key, distance: int | None = None):
    from jaxrnn import tasks

    if length is not None and length < 2:
        raise ValueError(f"--length must be >= 2, got {length}")
    makers = {
        "adding": lambda: tasks.adding(length or 50, key=key),
        "copy_memory": lambda: tasks.copy_memory(length or 10, key=key),
        "france": lambda: tasks.france(distance or 10, key=key, length=length),
        "next_word": tasks.next_word,
        "stock_prices": lambda: tasks.stock_prices(key=key),
        "characters": tasks.characters,
        "digits": tasks.digits,
        "reverse_digits": lambda: tasks.reverse_digits(length or 5, key=key),
    }
    return makers[name]()


def _cell(name: str):
    from jaxrnn.cells import CELLS

    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose from {', '.join(CELLS)}")
    return CELLS[name]


def cmd_study(args) -> int:
    """Run the study, print the table, write the report."""
    from jaxrnn.study import StudyConfig, report, run_study

    config = StudyConfig.full() if args.full else StudyConfig()
    config.task = task_name(args.task)
    if args.lengths:
        config.lengths = tuple(args.lengths)
    if args.cells:
        config.cells = tuple(args.cells)
    for field in ("hidden", "examples", "epochs", "seeds", "init", "seed"):
        if getattr(args, field) is not None:
            setattr(config, field, getattr(args, field))
    config.validate()
    report.check_writable(args.report, force=args.force)
    print(
        f"jaxrnn study: {config.task} task, lengths {list(config.lengths)}, cells {list(config.cells)}, "
        f"hidden {config.hidden}, {config.epochs} epochs of {config.examples} sequences, "
        f"{config.seeds} seed{'s' if config.seeds > 1 else ''} from --seed {config.seed}, {config.init} init"
    )
    results = run_study(config, verbose=not args.quiet and sys.stderr.isatty())
    print(f"\n{report.caption(results)}:\n")
    print(report.table(results))
    for path in report.write_report(results, args.report, force=args.force):
        print(f"wrote {path}")
    return 0


def cmd_train(args) -> int:
    """Train one model; the checkpoint records what generate needs to rebuild it."""
    import jax

    from jaxrnn import tasks
    from jaxrnn.callbacks import ModelCheckpoint
    from jaxrnn.data import TBPTT, Batches
    from jaxrnn.train import default_optimizer, fit

    cell = _cell(args.cell)
    name = task_name(args.task)
    if os.path.exists(args.checkpoint) and not args.resume:
        raise ValueError(
            f"checkpoint {args.checkpoint!r} exists: pass --resume to continue it, or another --checkpoint"
        )
    key = jax.random.PRNGKey(args.seed)
    task = _make_task(name, args.length, key, args.distance)
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.tbptt is not None and args.tbptt < 1:
        raise ValueError(f"--tbptt must be >= 1, got {args.tbptt}")
    tbptt = args.tbptt if args.tbptt is not None else (100 if name == "characters" else None)
    batch_size = task.info.get("n_streams", args.batch_size)
    model = tasks.build_model(task, cell, args.hidden, key=key, num_layers=args.layers)
    info = {
        "task": name,
        "cell": args.cell,
        "hidden": args.hidden,
        "layers": args.layers,
        "length": args.length,
        "vocab": task.info.get("vocab"),
    }
    model, history = fit(
        model,
        Batches(task.train, batch_size) if tbptt is None else TBPTT(Batches(task.train, batch_size), tbptt),
        key=key,
        loss=task.loss,
        epochs=args.epochs,
        validation=task.validation,
        optimizer=default_optimizer(args.lr),
        callbacks=[ModelCheckpoint(args.checkpoint, every=200, info=info, resume=args.resume)],
        verbose=not args.quiet and sys.stderr.isatty(),  # the epochs are printed below
    )
    for i, e in enumerate(history.epochs, 1):
        print(f"epoch {i}: " + ", ".join(f"{k} {v:.4f}" for k, v in e.items()))
    if task.baseline is not None:
        print(f"memoryless baseline loss: {task.baseline:.4f}")
    print(f"saved {args.checkpoint}")
    return 0


def cmd_generate(args) -> int:
    """Sample from a character model checkpoint."""
    import jax

    from jaxrnn import tasks
    from jaxrnn.io import load
    from jaxrnn.train import checkpoint as ckpt

    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise ValueError(f"--temperature must be a finite number >= 0 (0 is greedy), got {args.temperature}")
    if not os.path.exists(args.checkpoint):
        raise FileNotFoundError(
            f"checkpoint {args.checkpoint!r} does not exist (train one: jaxrnn train --task characters)"
        )
    info = ckpt.read_meta(args.checkpoint).get("info", {})
    if info.get("task") not in ("characters", "chars"):  # 'chars': written before the names were unified
        raise ValueError(f"checkpoint {args.checkpoint!r} holds no character model (task {info.get('task')!r})")
    vocab = info["vocab"]
    model = load(args.checkpoint)
    key = jax.random.PRNGKey(args.seed)
    print(tasks.sample_text(model, vocab, args.prompt, args.length, temperature=args.temperature, key=key))
    return 0


def cmd_tasks(args) -> int:
    """List the tasks."""
    short = {v: k for k, v in ALIASES.items()}
    for name, text in TASK_HELP.items():
        print(f"{name:15s} {text}" + (f" (short: {short[name]})" if name in short else ""))
    return 0


def use_compilation_cache() -> str:
    """Turn JAX's persistent compilation cache on (programs that took >= 0.1 s to compile,
    unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise),
    in the folder the module docstring names, unless a folder is already configured;
    returns the folder in use."""
    import jax

    folder = jax.config.jax_compilation_cache_dir
    if not folder:
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(home, "jaxrnn", "xla")
        jax.config.update("jax_compilation_cache_dir", folder)
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jaxrnn`` and the ``jaxrnn`` script."""
    argv = sys.argv[1:] if argv is None else argv
    use_compilation_cache()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["study", *argv]
    args = _parser().parse_args(argv)
    commands = {"study": cmd_study, "train": cmd_train, "generate": cmd_generate, "tasks": cmd_tasks}
    try:
        return commands[args.command](args)
    except (ValueError, TypeError, OSError, ImportError, json.JSONDecodeError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted")
