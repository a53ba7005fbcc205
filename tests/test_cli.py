"""The command line: a small study end to end, train + generate, and one-line errors."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxrnn.study.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "jaxrnn", *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--task", "sudoku"], "unknown task 'sudoku'"),
        (["train", "--task", "adding", "--cell", "transformer"], "unknown cell 'transformer'"),
        (["train", "--task", "adding", "--length", "1"], "--length must be >= 2"),
        (["train", "--task", "france", "--distance", "30", "--length", "20"], "distance 30 does not fit"),
        (["study", "--lengths", "1"], "length 1 is too short"),
        (["study", "--task", "nope"], "unknown task 'nope'"),
        (["generate", "--checkpoint", "/nonexistent/x.ckpt"], "does not exist"),
        (["generate", "--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["train", "--task", "adding", "--tbptt", "0"], "--tbptt must be >= 1, got 0"),
        (["train", "--task", "adding", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["train", "--task", "adding", "--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) if args[0].startswith("--") else _nothing():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("jaxrnn: error:") and message in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_unwritable_report_and_corrupt_checkpoint(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["study", "--report", str(blocker / "sub")]) == 2
    assert "is not writable" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["generate", "--checkpoint", str(bad)]) == 2
    assert "not a jaxrnn checkpoint" in capsys.readouterr().err


def test_train_then_generate(tmp_path, capsys):
    ckpt = str(tmp_path / "chars.ckpt")
    out = run(
        "train",
        "--task",
        "chars",
        "--cell",
        "gru",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--tbptt",
        "200",
        "--checkpoint",
        ckpt,
        "--quiet",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epoch 1:" in out.stdout and os.path.exists(ckpt)
    gen = run("generate", "--checkpoint", ckpt, "--prompt", "import ", "--length", "40")
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert gen.stdout.startswith("import ") and len(gen.stdout.rstrip("\n")) == 47
    assert main(["generate", "--checkpoint", ckpt, "--prompt", "\u2603"]) == 2
    capsys.readouterr()
    assert main(["train", "--task", "characters", "--checkpoint", ckpt]) == 2  # CLI terms, before any work
    assert "pass --resume to continue it" in capsys.readouterr().err


def without_seconds(results: dict) -> dict:
    """results.json less its wall-clock times."""

    def strip(run: dict) -> dict:
        return {f: [strip(s) for s in v] if f == "seeds" else v for f, v in run.items() if f != "seconds"}

    return {**results, "runs": {k: strip(r) for k, r in results["runs"].items()}}


@pytest.mark.slow
def test_small_study_writes_the_report_and_another_process_gets_the_same_numbers(tmp_path):
    folder = tmp_path / "report"
    args = ["study", "--lengths", "6", "--seeds", "2", "--hidden", "8", "--examples", "256", "--epochs", "1", "--quiet"]
    args += ["--cells", "rnn", "lstm"]  # two cells are enough here, and a third costs its compilations
    cache = {  # this session's compilation cache, so that the second run below compiles less
        "JAX_COMPILATION_CACHE_DIR": jax.config.jax_compilation_cache_dir or "",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
    }
    out = run(*args, "--report", str(folder), env={**os.environ, **cache, "PYTHONHASHSEED": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| rnn |" in out.stdout and "memoryless baseline" in out.stdout
    assert "Final validation MSE per cell and length, adding task" in out.stdout  # not "(accuracy)": MSE
    assert "mean ± standard deviation over 2 seeds" in out.stdout
    for name in [
        "results.json",
        "table.md",
        "learning_curves.png",
        "gradient_vs_lag.png",
        "spectra.png",
        "final_loss.png",
        "eigenvalues_rnn.png",
    ]:
        assert (folder / name).stat().st_size > 0, name
    results = json.loads((folder / "results.json").read_text())
    assert set(results["runs"]) == {f"{c}@6" for c in ("rnn", "lstm")}
    lstm = results["runs"]["lstm@6"]
    assert [len(s["grad_vs_lag_trained"]) for s in lstm["seeds"]] == [6, 6]
    losses = [s["val_loss"] for s in lstm["seeds"]]
    assert losses[0] != losses[1]  # each seed its own data and weights
    assert lstm["val_loss"] == pytest.approx(np.mean(losses)) and lstm["val_loss_std"] == pytest.approx(
        np.std(losses, ddof=1)
    )
    assert f"| lstm | {lstm['val_loss']:.4f} ± {lstm['val_loss_std']:.4f} |" in out.stdout
    # the same command in this process (another PYTHONHASHSEED): the same numbers, bit for bit
    assert main([*args, "--report", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert without_seconds(again) == without_seconds(results)


def test_study_keys_are_the_same_in_every_process():
    """A cell's key comes from the seed and its name alone, not from Python's salted hash."""
    code = (
        "import jax, jaxrnn.study as s; print(jax.random.key_data(s.cell_key(jax.random.PRNGKey(0), 'lstm')).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_cli_task_names_are_the_python_names_with_short_aliases(capsys):
    import jaxrnn
    from jaxrnn.study.cli import ALIASES, TASK_HELP, task_name

    assert list(TASK_HELP) == list(jaxrnn.tasks.TASKS)
    assert {task_name(a) for a in ALIASES} <= set(TASK_HELP) and task_name("chars") == "characters"
    assert main(["tasks"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in TASK_HELP) and "(short: chars)" in listed


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "hidden units per layer (default: 64)" in text and "(default: jaxrnn.ckpt)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_study_writes_only_into_its_own_report_folder(tmp_path, capsys):
    from jaxrnn.study import report

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["study", "--report", str(folder), "--lengths", "5", "--epochs", "1"]) == 2
    assert "--force" in capsys.readouterr().err and (folder / "notes.txt").read_text() == "keep me"
    report.check_writable(str(folder), force=True)
    (folder / "results.json").write_text(json.dumps({"config": {}, "runs": {}}))  # a report: may be rewritten
    report.check_writable(str(folder))


def test_the_command_keeps_a_persistent_compilation_cache(tmp_path):
    """In $XDG_CACHE_HOME/jaxrnn/xla unless JAX_COMPILATION_CACHE_DIR says where: a program
    the command's process compiles lands there."""
    script = (
        "import jax, jax.numpy as jnp; from jaxrnn.study.cli import main;"
        "main(['tasks']); print(jax.config.jax_compilation_cache_dir);"
        "f = jax.jit(lambda x: jnp.linalg.qr(x @ x.T + jnp.sin(x))[0].sum());"
        "print(f(jnp.ones((64, 64))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    folder = tmp_path / "jaxrnn" / "xla"
    assert str(folder) in first.stdout and any(folder.iterdir())
    given = {**env, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine")}
    second = subprocess.run([sys.executable, "-c", script], env=given, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and str(tmp_path / "mine") in second.stdout, second.stderr[-2000:]
