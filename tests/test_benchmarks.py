"""The benchmark runs on tiny sizes and writes its files (no timing is asserted)."""

import json
import os
import pathlib
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest

from benchmarks import (
    chars,
    denormals,
    gpu,
    lstm_profile,
    mnist,
    parallel_in_time,
    parallel_iterations,
    scan_variants,
    seq_lengths,
    trained_spectra,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_seq_lengths_tiny_writes_json_table_and_plot(tmp_path):
    seq_lengths.main(
        [
            "--preset",
            "tiny",
            "--lengths",
            "4",
            "--cells",
            "lstm",
            "--repeats",
            "1",
            "--memory",
            "--memory-lengths",
            "32",
            "--out",
            str(tmp_path),
            "--impls",
            "jaxrnn",
            "torch",
            "equinox",
            "flax",
            "cudnn",
        ]
    )
    results = json.loads((tmp_path / "results.json").read_text())
    recs = results["records"]
    assert {r["impl"] for r in recs} >= {"jaxrnn", "torch", "equinox"}
    assert all(r["median_s"] > 0 for r in recs)
    jax_bwd = [r for r in recs if r["impl"] == "jaxrnn" and r["mode"] == "fwdbwd"]
    assert len(jax_bwd) == 1 and all(r["memory_bytes"] > 0 and r["memory_bytes_remat"] > 0 for r in jax_bwd)
    assert "cudnn/lstm/cpu" in results["missing"]  # reported, not silently dropped
    assert results["environment"]["threads"] >= 1 and results["environment"]["jax"]
    table = (tmp_path / "results.md").read_text()
    assert "jaxrnn/torch" in table and "MiB remat" in table and "Memory vs T" in table
    assert [(r["cell"], r["T"]) for r in results["memory"]] == [("lstm", 32)]
    assert all(r["memory_bytes_remat"] > 0 for r in results["memory"])
    assert (tmp_path / "time_vs_T_cpu.png").stat().st_size > 0


def test_scan_variants_tiny_writes_its_table(tmp_path):
    out = tmp_path / "variants.md"
    scan_variants.main(
        ["--cells", "lstm", "--lengths", "3", "--batch", "2", "--input", "3", "--hidden", "4"]
        + ["--repeats", "1", "--rounds", "1", "--out", str(out)]
    )
    rows = [line for line in out.read_text().splitlines() if line.startswith("| lstm |")]
    assert [row.split(" | ")[2] for row in rows] == ["fwd", "fwdbwd"]
    cells = rows[0].strip("| ").split(" | ")
    assert len(cells) == 3 + 2 * len(scan_variants.VARIANTS) - 1
    assert cells[3 + len(scan_variants.VARIANTS)] != "nan"  # a ratio to the current layer was computed


def test_lstm_profile_tiny_writes_its_tables(tmp_path):
    out = tmp_path / "profile.md"
    args = ["--batch", "2", "--input", "3", "--hidden", "4", "--length", "5", "--rounds", "1"]
    lstm_profile.main([*args, "--thunks", "--thunk-calls", "2", "--out", str(out)])
    programs, thunks = out.read_text().split("thunk by thunk")
    rows = [line for line in programs.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 10 and all(float(row.split(" | ")[1]) > 0 for row in rows)
    thunk_rows = [line.strip("| ").split(" | ") for line in thunks.splitlines() if line.startswith("| ")][2:]
    # the trace sees the recurrent matmul once per step (T 5) of a loop
    assert 5 in [float(runs) for _, what, runs, _, _ in thunk_rows if what.startswith("dot")]
    assert sum(float(share.rstrip("%")) for *_, share in thunk_rows) <= 100.05


@pytest.mark.slow
def test_cpu_devices_tiny_times_every_way_on_one_core_and_two(tmp_path):
    from benchmarks import cpu_devices

    cpu_devices.main(["--tiny", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    ways = ["whole", "half", "sharded", "per device", "two calls", "two threads"]
    assert sorted((r["cores"], r["cell"], r["way"]) for r in rows) == sorted(
        (c, cell, w) for c in (1, 2) for cell in ("lstm", "gru") for w in ways
    )
    assert all(r["ms"] > 0 for r in rows)
    assert "| lstm | two threads |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_fit_processes_tiny_runs_every_way(tmp_path):
    from benchmarks import fit_processes

    fit_processes.main(["--tiny", "--rounds", "1", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["way"] for r in rows] == ["1 process, 1 core", "1 process, all cores"] + [
        f"{os.cpu_count()} processes, a core each",
        f"{os.cpu_count()} processes, free",
    ]
    one = [r for r in rows if r["way"].startswith("1 process")]
    assert one[0]["loss"] == one[1]["loss"]  # the same run, whatever the cores
    assert all(len(r["epoch_seconds"]) == 2 for r in rows)


@pytest.mark.slow
def test_fit_throughput_tiny_writes_its_table(tmp_path):
    # its own process (the benchmark turns on JAX's persistent compilation cache), with the
    # host as two devices for fit_sharded
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.fit_throughput",
        "--shapes",
        "3,2,4",
        "--repeats",
        "1",
        "--examples",
        "256",
        "--impls",
        "fit",
        "fit_block1",
        "fit_sharded",
        "fit_stream",
        "bare",
        "torch",
        "torch_1thread",
        "--out",
        str(tmp_path),
    ]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    impls = {"fit", "fit_block1", "fit_sharded", "fit_stream", "bare", "torch", "torch_1thread"}
    assert {r["impl"] for r in results["records"]} == impls
    assert results["environment"]["jax"] and len(results["environment"]["devices"]) == 2
    row = next(
        line for line in (tmp_path / "results.md").read_text().splitlines() if line.startswith("| 3, 2, 4, 32 |")
    )
    assert len(row.strip("| ").split(" | ")) == 1 + 7 + 8  # shape, seven times, eight ratios
    one = subprocess.run(cmd[:-1] + [str(tmp_path / "one")], capture_output=True, text=True, cwd=ROOT)
    assert one.returncode == 2 and "--impls fit_sharded needs several devices, found 1" in one.stderr


def test_parallel_in_time_tiny_writes_its_table(tmp_path):
    out = tmp_path / "pit.md"
    args = ["--cells", "gru", "--hidden", "3", "--batch", "2", "--lengths", "20", "--repeats", "1"]
    parallel_in_time.main([*args, "--methods", "quasi", "deer", "--dense-limit", "10", "--out", str(out)])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| gru | 3 | 2 | 20 |"))
    assert "skipped (dense too large)" in row  # 20 x 2 x 3^2 > 10
    rows = json.loads((tmp_path / "pit.json").read_text())["rows"]
    assert rows[0]["info"]["quasi"]["converged"] and 1 <= rows[0]["info"]["quasi"]["iterations"] <= 20


def test_parallel_iterations_tiny_writes_its_table(tmp_path):
    out = tmp_path / "iterations.md"
    args = ["--gains", "0.5", "--hidden", "3", "--lengths", "8", "16", "--probe", "16", "--max-iter", "40"]
    parallel_iterations.main([*args, "--elk-max", "8", "--dense-limit", "200", "--no-trained", "--out", str(out)])
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| tanh RNN, gain 0.5 |")]
    assert [r[2] for r in rows] == list(parallel_iterations.METHODS)
    deer = dict(zip((8, 16), rows[0][3:5]))
    assert all(" / " in v for v in deer.values())  # measured / forecast
    assert rows[2][4].strip(" |") == "-"  # ELK not run past --elk-max
    data = json.loads((tmp_path / "iterations.json").read_text())["rows"][0]
    assert data["lyapunov"] < 0 and 1 <= data["counts"]["quasi"]["16"] <= 16
    assert not jax.config.jax_enable_x64  # its float64 ends with the run: it once leaked into later tests


@pytest.mark.slow
def test_the_gpu_command_runs_every_stage_tiny_on_the_cpu(tmp_path):
    """``python -m benchmarks.gpu --tiny``: every stage in its own process, at most 8 flat
    files, each stage's status and results, the summary with the goals' lines."""
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--tiny", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) <= 8 and all(p.is_file() for p in tmp_path.iterdir()), files
    for stage in gpu.FULL:
        record = json.loads((tmp_path / f"{stage}.json").read_text())
        assert record["status"] == "ok", (stage, record["log_tail"])
        assert record["results"], stage
    tests = json.loads((tmp_path / "tests.json").read_text())["results"]
    assert tests["counts"]["tests"] == 2 and not tests["failed"]
    parallel = json.loads((tmp_path / "parallel.json").read_text())["results"]
    assert parallel["backend"] == "cpu" and parallel["iteration_cost"]["quasi"][0][:2] == [2, 1]
    assert (tmp_path / "seq_lengths.png").stat().st_size > 0
    text = (tmp_path / "summary.md").read_text()
    assert "## Goals" in text and "LSTM <= 1.1x" in text and "## fit" in text and "## fit on every CPU core" in text
    cores = json.loads((tmp_path / "cpu_cores.json").read_text())["results"]
    assert cores["backend"] == "cpu" and {r["impl"] for r in cores["records"]} == {"fit", "fit_default", "torch"}


def test_the_gpu_goals_read_the_measurements():
    def rec(impl, cell, B, H, seconds):
        return {"impl": impl, "device": "gpu", "cell": cell, "mode": "fwdbwd", "B": B, "H": H, "T": 1024,
                "median_s": seconds}  # fmt: skip

    shapes = [(B, H) for H in (256, 1024) for B in (32, 256)]
    records = [rec("torch", c, B, H, 1.0) for c in ("lstm", "gru") for B, H in shapes]
    records += [rec("jaxrnn", "lstm", B, H, 1.05) for B, H in shapes]
    records += [rec("jaxrnn", "gru", B, H, 2.5 if B == 256 else 1.5) for B, H in shapes]
    row = {"cell": "gru", "H": 8, "B": 1, "T": 100_000, "seconds": {"sequential": 1.0, "deer": 0.2, "quasi": 0.05}}
    row["info"] = {"auto": {"chose": "quasi"}}
    lines = gpu.goals({"seq_lengths": {"results": {"records": records}}, "parallel": {"results": {"rows": [row]}}})
    assert lines[0].startswith("- LSTM <= 1.1x") and "(met)" in lines[0] and "B 256 H 1024: 1.05" in lines[0]
    assert "(not met)" in lines[1] and "B 256 H 256: 2.50" in lines[1]
    assert "(not measured)" in lines[2]
    assert "(met)" in lines[3] and "20.0x (quasi), auto chose quasi" in lines[3]


def write_mnist_files(folder) -> None:
    """Raw IDX files of 96 training and 64 test images (random pixels and labels)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("t10k", 64)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, a in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
            (folder / f"{split}-{kind}-ubyte").write_bytes(header + a.tobytes())


def test_mnist_trains_both_frameworks_from_the_same_weights_on_idx_files(tmp_path):
    """The row-MNIST comparison, tiny, on IDX files written here (random images)."""
    write_mnist_files(tmp_path)
    out = tmp_path / "out"
    mnist.main(["--data", str(tmp_path), "--out", str(out), "--epochs", "2", "--hidden", "8", "--cells", "gru"])
    results = json.loads((out / "results.json").read_text())
    (run,) = results["runs"]
    assert run["updates_per_epoch"] == 1 and len(run["epochs"]) == 2
    for e in run["epochs"]:
        assert 0 <= e["jaxrnn_test_accuracy"] <= 1 and 0 <= e["torch_test_accuracy"] <= 1 and e["torch_seconds"] > 0
    assert run["jaxrnn_devices"] == 1 and run["torch_threads"] >= 1
    row = f"| gru | 1 | {run['torch_threads']} | 2 | 2 | 0.001 |"
    assert row in (out / "results.md").read_text() and (out / "accuracy.png").stat().st_size > 0


@pytest.mark.slow
def test_pixel_mnist_and_the_character_model_save_models_whose_spectra_are_drawn(tmp_path):
    """Pixel MNIST (three cells) and the character language model, tiny, save their
    trained models; the spectra command reads them and measures each along test data."""
    write_mnist_files(tmp_path)
    text = tmp_path / "novel.txt"
    text.write_text("It is a truth universally acknowledged, that a single man in possession. " * 40)
    mnist.main(
        ["--data", str(tmp_path), "--out", str(tmp_path / "pixels"), "--order", "pixels", "--epochs", "1",
         "--hidden", "4", "--cells", "rnn", "irnn", "lstm", "--save-models"]
    )  # fmt: skip
    model = str(tmp_path / "pixels" / "models" / "lstm.eqx")
    denormals.main(["--data", str(tmp_path), "--model", model, "--rounds", "1", "--out", str(tmp_path / "d.md")])
    assert (tmp_path / "d.md").read_text().count("| trained |") == len({1, os.cpu_count()})
    argv = ["--data", str(text), "--out", str(tmp_path / "chars"), "--cells", "lstm", "--hidden", "8"]
    chars.main([*argv, "--streams", "4", "--k", "10", "--updates", "3", "--epochs", "2", "--save-models"])
    run = json.loads((tmp_path / "chars" / "results.json").read_text())["runs"][0]
    assert len(run["epochs"]) == 2 and all(0 < e["torch_test_bpc"] < 10 for e in run["epochs"])
    assert all(sample.startswith(chars.PROMPT) for sample in run["samples"].values())
    assert "| lstm | 6 |" in (tmp_path / "chars" / "results.md").read_text()
    out = tmp_path / "spectra"
    trained_spectra.main(
        ["--mnist", str(tmp_path), "--text", str(text), "--mnist-models", str(tmp_path / "pixels"),
         "--chars-models", str(tmp_path / "chars"), "--out", str(out), "--sequences", "2", "--chars", "30",
         "--transient", "5", "--pixel-transient", "5"]
    )  # fmt: skip
    measured = json.loads((out / "results.json").read_text())
    assert set(measured["pixels"]) == {"rnn", "irnn", "lstm"} and len(measured["chars"]) == 2
    lstm = measured["pixels"]["lstm"]
    assert np.shape(lstm["norms"]) == (2, 784) and np.shape(lstm["exponents"]) == (8,)  # (h, c) of H 4
    assert (out / "pixel_mnist.png").stat().st_size > 0 and (out / "chars.png").stat().st_size > 0


def test_stocks_scores_the_cells_against_persistence_computed_by_hand(tmp_path):
    """The stock comparison, tiny, on a CSV written here: its persistence baseline is the
    RMSE of yesterday's close against today's over the test days, computed here."""
    from benchmarks import stocks

    close = 50 + np.cumsum(np.random.default_rng(0).normal(0, 1, 300))
    rows = [f"2000-01-{i:03d},{c:.4f}" for i, c in enumerate(close)]
    (tmp_path / "msft.csv").write_text("Date,Close\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "msft.csv"), "--out", str(out), "--cells", "gru", "--hidden", "4"]
    stocks.main([*argv, "--epochs", "1", "--seeds", "1"])
    results = json.loads((out / "results.json").read_text())
    prices = np.round(close, 4)
    test = np.arange(255, 300)  # the last 15% of 300 days
    by_hand = np.sqrt(np.mean((prices[test] - prices[test - 1]) ** 2))
    assert np.isclose(results["rows"][0]["baselines"]["persistence"], by_hand, rtol=1e-5)
    assert [r["framing"] for r in results["rows"]] == ["prices", "scaled prices", "returns"]
    assert "| returns | zero return |" in (out / "results.md").read_text()


def test_vowels_compares_lengths_with_padding_on_ts_files(tmp_path):
    """The JapaneseVowels comparison, tiny, on .ts files written here (two speakers)."""
    from benchmarks import vowels

    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        lines = ["@problemName JapaneseVowels", "@timeStamps false", "@dimensions 2", "@classLabel true 1 2", "@data"]
        for i in range(n):
            T = int(rng.integers(3, 7))
            dims = [",".join(f"{v:.3f}" for v in rng.normal(i % 2, 1, T)) for _ in range(2)]
            lines.append(":".join([*dims, str(1 + i % 2)]))
        (tmp_path / f"JapaneseVowels_{split}.ts").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path), "--out", str(out), "--cells", "gru", "--seeds", "1", "--epochs", "1"]
    vowels.main([*argv, "--hidden", "4"])
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["mode"] for r in rows] == ["lengths", "padding"]
    assert 0 <= rows[0]["jaxrnn"]["accuracy_without_lengths"] <= 1 and 0 <= rows[1]["torch"]["accuracy"] <= 1
    assert "| gru | lengths, tested without |" in (out / "results.md").read_text()


def test_packing_measures_both_layouts_on_the_lines_of_a_text(tmp_path):
    from benchmarks import packing

    text = tmp_path / "austen.txt"
    novel = "It is a truth universally acknowledged\n\nthat a single man\nin possession\nof a good fortune\n"
    text.write_text(novel * 12)
    packing.main(
        ["--text", str(text), "--lines", "40", "--synthetic", "0", "--hidden", "4", "--batch", "8",
         "--epochs", "2", "--timing-epochs", "2", "--rounds", "1", "--out", str(tmp_path / "out")]
    )  # fmt: skip
    results = json.loads((tmp_path / "out" / "results.json").read_text())["data"]
    lines = results["lines"]  # 40 non-empty lines: their lengths less one (the last character predicts nothing)
    lengths = [len(s) - 1 for s in text.read_text().splitlines() if s.strip()][:40]
    assert lines["real_steps"] == sum(lengths)
    assert lines["padding"] == 1 - sum(lengths) / (40 * max(lengths))
    assert 1 - lines["padding"] < lines["fill_packed"] <= 1
    for layout in ("padded", "packed"):
        assert len(lines[layout]["val_accuracy"]) == 2 and lines[layout]["real_steps_per_second"] > 0
    assert "| lines |" in (tmp_path / "out" / "results.md").read_text()
    train, held, _, _ = packing.lognormal(100, 30)  # the synthetic set: lengths cut, labels the sign of the mean
    assert train.size == 80 and held.size == 20 and 2 <= train.lengths.min() and train.lengths.max() <= 30
    np.testing.assert_array_equal(train.targets, (train.inputs[..., 0].sum(1) > 0).astype(np.int32))
