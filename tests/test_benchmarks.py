"""The benchmark runs on tiny sizes and writes its files (no timing is asserted)."""

import json

from benchmarks import seq_lengths


def test_seq_lengths_tiny_writes_json_table_and_plot(tmp_path):
    seq_lengths.main(
        [
            "--preset",
            "tiny",
            "--repeats",
            "1",
            "--memory",
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
    assert len(jax_bwd) == 3 * 2 and all(r["memory_bytes"] > 0 and r["memory_bytes_remat"] > 0 for r in jax_bwd)
    assert "cudnn/lstm/cpu" in results["missing"]  # reported, not silently dropped
    assert results["environment"]["threads"] >= 1 and results["environment"]["jax"]
    table = (tmp_path / "results.md").read_text()
    assert "jaxrnn/torch" in table and "MiB remat" in table
    assert (tmp_path / "time_vs_T_cpu.png").stat().st_size > 0
