"""jaxrnn on a GPU in one command: the machine, the suite, and the benchmarks, stage by stage.

    PYTHONPATH=. python -m benchmarks.gpu --out DIR          # on the GPU machine, ~9 minutes
    python -m benchmarks.gpu --tiny --out DIR                # every stage on the CPU, < 1 minute

Stages, in order of value, each a child process with its own time cap (so that none eats
the next) and each writing its results into DIR as soon as it ends; a stage cut short
keeps what its benchmark had written (they write after every measured point):

- ``machine``: GPU, driver, CUDA, cuDNN, versions, ``nvidia-smi``.
- ``tests``: the suite on the GPU, the files that exercise every layer path, the cuDNN
  LSTM, the PyTorch parity, the spectra, parallel in time and fit first, then the rest
  with the time left (pytest-xdist workers, ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` so
  that they share the GPU); JUnit XML and a one-line summary. The suite runs with
  ``jax_default_matmul_precision=highest``: its tests compare float32 results with
  references at tolerances that TF32's 10-bit mantissa would break.
- ``seq_lengths``: ``benchmarks.seq_lengths --preset gpu --devices gpu``: LSTM, GRU,
  simple RNN; jaxrnn (cuDNN for the LSTM), jaxrnn's scan, PyTorch (cuDNN),
  ``jax.experimental.rnn``, Flax; forward and forward+backward; T 1024 at B 32 and 256,
  H 256 and 1024 first, then T 16-16384. Precision "default" in both frameworks: TF32 on
  Hopper, what a JAX user gets and what PyTorch's cuDNN uses with ``allow_tf32``.
- ``parallel``: ``benchmarks.parallel_in_time``: DEER and quasi-DEER against the
  sequential scan, GRU, H 1-64, B 1 and 16, T 1e5, 1e6, 1e4, 1e3 in that order, with
  the per-iteration costs ``parallel.ITERATION_COST`` reads (``iteration_cost`` in its
  JSON; ``python -m benchmarks.parallel_in_time --merge DIR/parallel.json --costs
  jaxrnn/parallel/iteration_cost.json`` adds them).
- ``fit``: ``benchmarks.fit_throughput``: fit, the bare loop and PyTorch on CUDA at the
  CPU benchmark's two shapes and at B 256, H 1024.
- ``cpu_cores``: the machine's CPU cores (16 on the lent H200 machine), what this
  project's 2-core VM cannot show: ``benchmarks.fit_throughput`` with JAX on the CPU at
  the row-MNIST shape (LSTM 128, B 128, T 28, F 28) and at H 32 (F 8): fit on one
  device, fit's default placement (one device per core, at least 1024 rows x units a
  device: 16 devices at H 128, 4 at H 32), every device, PyTorch on every core and on
  one thread.

The caps add up to 510 s; with JAX's start-up in each child the whole stays within 9
minutes on one H200 (``--scale`` multiplies every cap).

DIR receives 8 files: machine.json, tests.json, seq_lengths.json, seq_lengths.png,
parallel.json, fit.json, cpu_cores.json, summary.md (every stage's status, its tables,
and the GPU issue's goals as measured): the device tool returns 8 at most. Each stage
JSON holds ``status`` (ok, failed, timeout), seconds, cap, command, the tail of its log
and its results (the tests': counts and the failed tests' names).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the suite's files that exercise the layer paths, the GPU path, interop (layers and whole
# models), spectra, parallel in time, fit, stepping and fit's guarantees: run first, the
# rest after with the time left
FIRST_TESTS = [
    "tests/test_cudnn.py",
    "tests/test_scan_paths.py",
    "tests/test_torch_interop.py",
    "tests/test_layers.py",
    "tests/test_masking.py",
    "tests/test_bptt.py",
    "tests/test_spectra.py",
    "tests/test_parallel.py",
    "tests/test_fit.py",
    "tests/test_step.py",
    "tests/test_segments.py",  # resets through every path (cuDNN must fall back), parallel in time included
    "tests/test_packing.py",
    "tests/test_trust.py",
]

FULL = {  # stage: (cap in seconds, arguments of its child); 510 s in all
    "machine": (20, []),
    "tests": (145, ["-n", "8"]),
    "seq_lengths": (155, ["--preset", "gpu", "--devices", "gpu", "--repeats", "5"]
                    + ["--impls", "jaxrnn", "jaxrnn_scan", "torch", "cudnn", "flax"]),
    "parallel": (70, ["--cells", "gru", "--hidden", "1", "4", "16", "64", "--batch", "1", "16"]
                 + ["--lengths", "100000", "1000000", "10000", "1000", "--lengths-first"]
                 + ["--methods", "deer", "quasi", "auto", "--repeats", "3"]
                 + ["--work-limit", "2e9", "--dense-limit", "2e9"]),
    "fit": (60, ["--shapes", "50,8,64", "50,8,1024,256", "20,8,32", "--repeats", "3"]
            + ["--impls", "fit", "bare", "torch", "--examples", "4096"]),
    "cpu_cores": (60, ["--shapes", "28,28,128,128", "28,8,32,128", "--repeats", "3", "--examples", "2048"]
                  + ["--impls", "fit", "fit_default", "fit_sharded", "torch", "torch_1thread"]),
}  # fmt: skip
TINY = {  # the same stages on the CPU, in seconds
    "machine": (60, []),
    "tests": (120, ["-n", "0", "-k", "packed or takes"]),
    "seq_lengths": (120, ["--preset", "tiny", "--lengths", "4", "--cells", "lstm", "--repeats", "1", "--devices", "cpu"]
                    + ["--impls", "jaxrnn", "jaxrnn_scan", "torch", "cudnn"]),
    "parallel": (120, ["--cells", "gru", "--hidden", "2", "--batch", "1", "--lengths", "30"]
                 + ["--methods", "quasi", "--repeats", "1"]),
    "fit": (120, ["--shapes", "3,2,4", "--repeats", "1", "--examples", "32", "--impls", "fit", "bare"]),
    "cpu_cores": (120, ["--shapes", "3,2,4,32", "--repeats", "1", "--examples", "64"]
                  + ["--impls", "fit", "fit_default", "torch"]),
}  # fmt: skip


def machine() -> dict:
    """The GPU, driver, CUDA and versions (run in the stage's child process)."""
    import platform

    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    smi = shutil.which("nvidia-smi")
    info["nvidia_smi"] = subprocess.run([smi], capture_output=True, text=True).stdout if smi else "not found"
    if smi:
        query = "name,driver_version,memory.total,clocks.max.sm"
        out = subprocess.run([smi, f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True, text=True)
        info["gpu"] = out.stdout.strip()
    import jax
    import jaxlib

    info.update(jax=jax.__version__, jaxlib=jaxlib.__version__, backend=jax.default_backend())
    info["devices"] = [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()]
    info["jax_default_matmul_precision"] = jax.config.jax_default_matmul_precision
    for name in ("torch", "flax", "equinox", "optax", "jaxtyping", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = "missing"
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        info["torch_cudnn"] = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    except ImportError:
        pass
    from jaxrnn.layers import cudnn

    info["jaxrnn_cudnn_path"] = cudnn.available()
    return info


def stage_command(stage: str, args: list[str], work: str) -> list[str]:
    """The child process of ``stage``, writing into the scratch folder ``work``."""
    py = [sys.executable]
    if stage == "machine":
        return py + ["-m", "benchmarks.gpu", "--machine-json", os.path.join(work, "machine.json")]
    if stage == "tests":
        return py + ["-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    if stage == "seq_lengths":
        return py + ["-m", "benchmarks.seq_lengths", *args, "--out", work]
    if stage == "parallel":
        return py + ["-m", "benchmarks.parallel_in_time", *args, "--out", os.path.join(work, "parallel.md")]
    return py + ["-m", "benchmarks.fit_throughput", *args, "--out", work]


def run_child(cmd: list[str], cap: float, env: dict) -> tuple[str, str, float]:
    """(status, log, seconds) of ``cmd`` run for at most ``cap`` seconds."""
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, cwd=ROOT, env=env)
        status, log = ("ok" if out.returncode == 0 else f"failed (exit {out.returncode})"), out.stdout + out.stderr
    except subprocess.TimeoutExpired as e:
        status = "timeout"
        log = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
    return status, log, time.perf_counter() - start


def run_tests(args: list[str], cap: float, env: dict, work: str) -> tuple[str, str, float, dict]:
    """The suite in two parts (FIRST_TESTS, then the rest) within ``cap``; one merged JUnit XML."""
    tiny = "-k" in args
    parts = [FIRST_TESTS[:1]] if tiny else [FIRST_TESTS, ["tests", *(f"--ignore={f}" for f in FIRST_TESTS)]]
    start, logs, statuses, suites = time.perf_counter(), [], [], ET.Element("testsuites")
    for i, files in enumerate(parts):
        left = cap - (time.perf_counter() - start)
        if left < 10:
            statuses.append("not run (no time left)")
            continue
        xml = os.path.join(work, f"part{i}.xml")
        cmd = stage_command("tests", [*args, f"--junitxml={xml}", *files], work)
        status, log, _ = run_child(cmd, left, env)
        statuses.append(status)
        logs.append(f"$ {' '.join(cmd)}\n{log}")
        if os.path.exists(xml):
            root = ET.parse(xml).getroot()
            suites.extend(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suites.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    ET.ElementTree(suites).write(os.path.join(work, "tests.xml"))
    summary = (
        f"{counts['tests'] - counts['failures'] - counts['errors'] - counts['skipped']} passed, "
        f"{counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped "
        f"({'; '.join(statuses)})"
    )
    results = {"summary": summary, "counts": counts, "failed": failed, "parts": statuses}
    status = "ok" if all(s == "ok" for s in statuses) else "; ".join(statuses)
    return status, "\n".join(logs), time.perf_counter() - start, results


def collect(stage: str, work: str, out: str) -> dict | None:
    """Copy the stage's files from ``work`` into ``out``; returns its results JSON if any."""
    name = {"machine": "machine.json", "parallel": "parallel.json", "tests": "tests.xml"}.get(stage, "results.json")
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    if stage == "seq_lengths":
        png = [f for f in os.listdir(work) if f.endswith(".png")]
        if not png:  # cut short before its plot: draw it from what it measured
            from benchmarks.seq_lengths import plot

            with open(path) as f:
                png = [os.path.basename(p) for p in plot(json.load(f), work)]
        if png:
            shutil.copy(os.path.join(work, png[0]), os.path.join(out, "seq_lengths.png"))
    if name.endswith(".json"):
        with open(path) as f:
            return json.load(f)
    return None


def run_stage(stage: str, cap: float, args: list[str], out: str, env: dict) -> dict:
    """Run one stage and write ``out/<stage>.json``."""
    with tempfile.TemporaryDirectory(prefix=f"jaxrnn-gpu-{stage}-") as work:
        if stage == "tests":
            status, log, seconds, results = run_tests(args, cap, env, work)
            collect(stage, work, out)
            command = f"python -m pytest {' '.join(args)} (two parts, see log)"
        else:
            cmd = stage_command(stage, args, work)
            status, log, seconds = run_child(cmd, cap, env)
            results = collect(stage, work, out)
            command = " ".join(cmd[1:]).replace(work, "DIR")
    record = {"stage": stage, "status": status, "seconds": round(seconds, 1), "cap_s": cap, "command": command}
    record.update(log_tail=log[-6000:], results=results)
    with open(os.path.join(out, f"{stage}.json"), "w") as f:
        json.dump(record, f, indent=1)
    print(f"[{stage}] {status} in {seconds:.0f} s (cap {cap:.0f} s)", flush=True)
    return record


def goals(records: dict) -> list[str]:
    """The GPU issue's three goals, each as measured (or why not)."""
    lines = []
    seq = (records.get("seq_lengths") or {}).get("results") or {}
    med = {
        (r["impl"], r["cell"], r["mode"], r["B"], r["H"], r["T"]): r["median_s"]
        for r in seq.get("records", [])
        if r["device"] == "gpu"
    }

    def ratio(cell, B, H, T=1024, impl="jaxrnn", peer="torch"):
        a, b = med.get((impl, cell, "fwdbwd", B, H, T)), med.get((peer, cell, "fwdbwd", B, H, T))
        return None if a is None or b is None else a / b

    shapes = [(B, H) for H in (256, 1024) for B in (32, 256)]
    for cell, limit, name in (("lstm", 1.1, "LSTM <= 1.1x"), ("gru", 2, "GRU <= 2x"), ("rnn", 2, "simple RNN <= 2x")):
        got = {s: ratio(cell, *s) for s in shapes}
        text = ", ".join(f"B {B} H {H}: {'not measured' if r is None else f'{r:.2f}'}" for (B, H), r in got.items())
        measured = [r for r in got.values() if r is not None]
        verdict = "not measured" if not measured else ("met" if all(r <= limit for r in measured) else "not met")
        lines.append(f"- {name} PyTorch cuDNN, fwd+bwd, T 1024 ({verdict}): {text}")
    rows = ((records.get("parallel") or {}).get("results") or {}).get("rows", [])
    goal = [r for r in rows if r["H"] <= 16 and r["T"] >= 100_000]
    if not goal:
        lines.append("- parallel in time >= 10x at H <= 16, T >= 1e5: not measured")
    else:
        parts = []
        for r in goal:
            seq_s = r["seconds"]["sequential"]
            best = max((seq_s / r["seconds"][m], m) for m in ("deer", "quasi") if m in r["seconds"])
            chose = r["info"].get("auto", {}).get("chose", "-")
            parts.append(f"H {r['H']} B {r['B']} T {r['T']}: {best[0]:.1f}x ({best[1]}), auto chose {chose}")
        ok = all(
            max(r["seconds"]["sequential"] / r["seconds"][m] for m in ("deer", "quasi") if m in r["seconds"]) >= 10
            for r in goal
        )
        lines.append(
            f"- parallel in time >= 10x at H <= 16, T >= 1e5 ({'met' if ok else 'not met'}): " + "; ".join(parts)
        )
    return lines


def summary(records: dict, out: str) -> None:
    """summary.md: every stage's status, its table, and the goals."""
    from benchmarks.fit_throughput import table as fit_table
    from benchmarks.parallel_in_time import table as parallel_table
    from benchmarks.seq_lengths import table as seq_table

    lines = ["# jaxrnn on the GPU: `python -m benchmarks.gpu`\n"]
    for stage, r in records.items():
        lines.append(f"- {stage}: {r['status']}, {r['seconds']} s of {r['cap_s']} s")
    m = (records.get("machine") or {}).get("results") or {}
    if m:
        lines.append(f"\nMachine: {m.get('gpu', '-')}; devices {m.get('devices')}; jax {m.get('jax')}, "
                     f"torch {m.get('torch')} (CUDA {m.get('torch_cuda')}, cuDNN {m.get('torch_cudnn')}), "
                     f"jaxrnn's cuDNN path: {m.get('jaxrnn_cudnn_path')}")  # fmt: skip
    tests = (records.get("tests") or {}).get("results")
    if tests:
        lines += [f"\n## Tests\n\n{tests['summary']}"] + [f"- failed: {f}" for f in tests["failed"]]
    lines += ["\n## Goals\n", *goals(records)]
    results = {s: (records.get(s) or {}).get("results") for s in ("seq_lengths", "parallel", "fit", "cpu_cores")}
    if results["seq_lengths"]:
        lines += ["\n## Sequence lengths", seq_table(results["seq_lengths"])]
    if results["parallel"]:
        methods = list(dict.fromkeys(m for r in results["parallel"]["rows"] for m in r["seconds"] if m != "sequential"))
        lines += ["\n## Parallel in time\n", parallel_table(results["parallel"]["rows"], methods)]
    if results["fit"]:
        lines += ["\n## fit\n", fit_table(results["fit"])]
    if results["cpu_cores"]:
        lines += ["\n## fit on every CPU core\n", fit_table(results["cpu_cores"])]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> dict:
    """Run the stages in order; returns {stage: record}."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=False, help="folder for the 8 result files")
    p.add_argument("--tiny", action="store_true", help="every stage on the CPU at toy sizes (CI)")
    p.add_argument("--stages", nargs="+", choices=list(FULL), default=list(FULL))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every stage's time cap")
    p.add_argument("--machine-json", help=argparse.SUPPRESS)  # the machine stage's child
    args = p.parse_args(argv)
    if args.machine_json:
        with open(args.machine_json, "w") as f:
            json.dump(machine(), f, indent=1)
        return {}
    if not args.out:
        p.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    plan = TINY if args.tiny else FULL
    if args.tiny:
        env["JAX_PLATFORMS"] = "cpu"
    records = {}
    for stage in args.stages:
        cap, stage_args = plan[stage]
        stage_env = {**env, "JAX_DEFAULT_MATMUL_PRECISION": "highest"} if stage == "tests" else env
        if stage == "cpu_cores":
            stage_env = {**env, "JAX_PLATFORMS": "cpu"}
        records[stage] = run_stage(stage, cap * args.scale, stage_args, args.out, stage_env)
        summary(records, args.out)
    return records


if __name__ == "__main__":
    main()
