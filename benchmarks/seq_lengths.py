"""Time one recurrent layer over sequence lengths: jaxrnn against PyTorch, Flax and Equinox.

    python -m benchmarks.seq_lengths                     # default: B 32, F 128, H 256, T 16..4096
    python -m benchmarks.seq_lengths --preset deepbench  # DeepBench LSTM shapes
    python -m benchmarks.seq_lengths --preset long       # B 16, H 32, T up to 100 000
    python -m benchmarks.seq_lengths --preset small      # B 32, F 8, H 32 and 64, T 20 and 50
    python -m benchmarks.seq_lengths --memory --memory-lengths 1024 4096 16384  # memory vs T
    python -m benchmarks.seq_lengths --lengths 16 64 --cells lstm --out /tmp/bench
    python -m benchmarks.seq_lengths --preset gpu --devices gpu  # the GPU's grid (benchmarks.gpu runs it)

For every JAX backend present (CPU always, GPU when visible) and every cell (rnn, lstm,
gru): the forward pass and forward+backward (BPTT: gradient of the summed outputs with
respect to the parameters), float32, at each T. ``jaxrnn`` is the layer as users get it
(on a GPU the LSTM takes cuDNN, ``jaxrnn.layers.cudnn``); ``jaxrnn_scan`` the same layer
with ``Engine(cudnn=False)`` (LSTM on a GPU only: elsewhere it is ``jaxrnn``). Matmul
precision (``--precision``): "default" lets both frameworks use TF32 on a GPU that has it
(JAX's default; PyTorch's ``allow_tf32`` flags set on), "highest" neither; recorded with
the results. Peers in the same run: PyTorch
nn.RNN/LSTM/GRU (cuDNN on GPU), Flax linen nn.RNN with SimpleCell / OptimizedLSTMCell /
GRUCell, an Equinox cell in a plain lax.scan (vmapped over the batch), and on GPU
jax.experimental.rnn's cuDNN LSTM. A peer that is not installed is reported as missing.

Method: warm-up excluded; compile time (JAX: lower + compile) reported apart; median of
--repeats rounds, each round timing every implementation once (interleaved, so that a
drift of the machine cancels in the ratios); block_until_ready / torch.cuda.synchronize; torch uses as many threads as
XLA's CPU client (the machine's cores), recorded with the versions, the device and the CPU
model. Memory: XLA's buffer analysis of the compiled fwd+bwd (arguments + outputs +
temporaries), with and without jaxrnn's remat (``--memory``: also the time with remat;
``--memory-lengths``: memory alone, compiled and not run, at longer T). Output in --out:
results.json, results.md (times and jaxrnn/peer ratios), and time_vs_T_<device>.png.
"""

import argparse
import json
import os
import statistics
import sys

import jax
import jax.numpy as jnp

import jaxrnn
from benchmarks.common import compile_pair, environment, timed
from jaxrnn.cells import CELLS

PRESETS = {
    "default": dict(batch=32, input=128, hidden=256, lengths=[16, 64, 256, 1024, 4096], cells=["rnn", "lstm", "gru"]),
    "tiny": dict(batch=4, input=8, hidden=16, lengths=[4, 8], cells=["rnn", "lstm", "gru"]),
    "long": dict(batch=16, input=32, hidden=32, lengths=[1000, 10_000, 100_000], cells=["rnn", "lstm", "gru"]),
    # DeepBench LSTM (H, B, T): (512, 64, 25), (1024, 64, 25), (256, 32, 150); input = H
    "deepbench": dict(shapes=[(512, 64, 25), (1024, 64, 25), (256, 32, 150)], cells=["lstm"]),
    # where most training happens (and benchmarks/fit_throughput's shapes): (H, B, T), input 8
    "small": dict(shapes=[(32, 32, 20), (32, 32, 50), (64, 32, 20), (64, 32, 50)], input=8, cells=["lstm", "gru"]),
    # the GPU issue's grid, most valuable first (a run cut short keeps what it measured):
    # T 1024 at (B, F, H) in {32, 256} x {(128, 256), (1024, 1024)} for every cell, then T
    # 16..16384 at B 32, H 256 and at B 256, H 1024
    "gpu": dict(
        runs=[
            (c, B, 1024, F, H) for c in ("lstm", "gru", "rnn") for F, H in ((128, 256), (1024, 1024)) for B in (32, 256)
        ]
        + [(c, 32, T, 128, 256) for c in ("lstm", "gru", "rnn") for T in (16, 64, 256, 4096, 16384)]
        + [(c, 256, T, 1024, 1024) for c in ("lstm", "gru", "rnn") for T in (16, 256, 4096, 16384)],
        cells=["lstm", "gru", "rnn"],
    ),
}


# ---- implementations: each returns {"fwd": (compile_s, call), "fwdbwd": (compile_s, call)} -----------


def impl_jaxrnn(cell, B, T, F, H, device, remat=False, engine=None):
    engine = engine or jaxrnn.layers.Engine()
    layer = jaxrnn.Recurrent(CELLS[cell](F, H, key=jax.random.PRNGKey(0)), remat=remat, engine=engine)
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    return compile_pair(lambda m, x: m(x)[0], layer, x, device)


def impl_jaxrnn_scan(cell, B, T, F, H, device):
    if device.platform != "gpu" or cell != "lstm":
        return "jaxrnn_scan: the same as jaxrnn but for the LSTM on a GPU"
    return impl_jaxrnn(cell, B, T, F, H, device, engine=jaxrnn.layers.Engine(cudnn=False))


def impl_equinox(cell, B, T, F, H, device):
    import equinox as eqx

    key = jax.random.PRNGKey(0)
    make = {"rnn": None, "lstm": eqx.nn.LSTMCell, "gru": eqx.nn.GRUCell}[cell]
    if make is None:
        return "equinox has no simple RNN cell"
    c = make(F, H, key=key)

    def forward(c, x):
        def one(xs):
            h0 = jnp.zeros(H)
            s0 = (h0, h0) if cell == "lstm" else h0

            def body(s, x_t):
                s = c(x_t, s)
                return s, (s[0] if cell == "lstm" else s)

            return jax.lax.scan(body, s0, xs)[1]

        return jax.vmap(one)(x)

    return compile_pair(forward, c, jax.random.normal(jax.random.PRNGKey(1), (B, T, F)), device)


def impl_flax(cell, B, T, F, H, device):
    try:
        import flax.linen as nn
    except ImportError:
        return "flax is not installed"
    make = {"rnn": nn.SimpleCell, "lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}[cell]
    rnn = nn.RNN(make(features=H))
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    params = rnn.init(jax.random.PRNGKey(0), x)
    return compile_pair(lambda p, x: rnn.apply(p, x), params, x, device)


def impl_cudnn(cell, B, T, F, H, device):
    if device.platform != "gpu" or cell != "lstm":
        return "cuDNN LSTM: GPU and LSTM only"
    from jax.experimental import rnn as jrnn

    key = jax.random.PRNGKey(0)
    weights = jrnn.init_lstm_weight(key, F, H, 1, False)
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    seq = jnp.full((B,), T, jnp.int32)
    h0 = jnp.zeros((1, B, H))

    def forward(w, x):
        return jrnn.lstm(
            x, h0, h0, w, seq, input_size=F, hidden_size=H, num_layers=1, dropout=0.0, bidirectional=False
        )[0]

    return compile_pair(forward, weights, x, device)


def impl_torch(cell, B, T, F, H, device):
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    gpu = device.platform == "gpu"
    if gpu and not torch.cuda.is_available():
        return "torch sees no CUDA device"
    dev = "cuda" if gpu else "cpu"
    make = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    module = make(F, H, batch_first=True).to(dev)
    x = torch.randn(B, T, F, device=dev)
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    def fwd():
        with torch.no_grad():
            module(x)
        sync()

    def fwdbwd():
        module.zero_grad(set_to_none=True)
        module(x)[0].sum().backward()
        sync()

    for f in (fwd, fwdbwd, fwd, fwdbwd):  # warm-up (cuDNN plans, allocator)
        f()
    return {"fwd": (None, fwd, None), "fwdbwd": (None, fwdbwd, None)}


IMPLS = {
    "jaxrnn": impl_jaxrnn,
    "jaxrnn_scan": impl_jaxrnn_scan,
    "torch": impl_torch,
    "flax": impl_flax,
    "equinox": impl_equinox,
    "cudnn": impl_cudnn,
}


def memory_bytes(compiled) -> int | None:
    """Arguments + outputs + temporaries of a compiled XLA executable (XLA's buffer analysis)."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def memory_vs_T(cells, B: int, F: int, H: int, lengths, device) -> list[dict]:
    """XLA's memory of jaxrnn's compiled fwd+bwd with and without remat, compiled only."""
    out = []
    for cell in cells:
        for T in lengths:
            x = jax.ShapeDtypeStruct((B, T, F), jnp.float32)
            rec = {"device": device.platform, "cell": cell, "B": B, "T": T, "F": F, "H": H}
            for key, remat in (("memory_bytes", False), ("memory_bytes_remat", True)):
                layer = jaxrnn.Recurrent(CELLS[cell](F, H, key=jax.random.PRNGKey(0)), remat=remat)
                grad = jax.grad(lambda m, x: jnp.sum(m(x)[0]))
                with jax.default_device(device):
                    rec[key] = memory_bytes(jax.jit(grad).lower(layer, x).compile())
            out.append(rec)
            print(
                f"{device.platform} {cell:4s} T={T:6d} memory {rec['memory_bytes'] / 2**20:9.1f} MiB, "
                f"remat {rec['memory_bytes_remat'] / 2**20:9.1f} MiB",
                flush=True,
            )
    return out


def runs_of(args) -> list[tuple[str, int, int, int, int]]:
    """(cell, B, T, F, H) for every run, in the order measured."""
    runs = PRESETS[args.preset].get("runs")
    if runs is not None:
        return [r for r in runs if r[0] in args.cells]
    return [(cell, *shape) for cell in args.cells for shape in shapes_of(args)]


def shapes_of(args) -> list[tuple[int, int, int, int]]:
    """(B, T, F, H) for every run."""
    if args.preset == "deepbench":
        return [(B, T, H, H) for H, B, T in PRESETS["deepbench"]["shapes"]]
    if args.preset == "small":
        return [(B, T, args.input, H) for H, B, T in PRESETS["small"]["shapes"]]
    return [(args.batch, T, args.input, args.hidden) for T in args.lengths]


def set_precision(precision: str) -> dict:
    """Matmul precision of both frameworks ("default": TF32 allowed on a GPU, "highest":
    not); returns what was set, for the record."""
    jax.config.update("jax_default_matmul_precision", None if precision == "default" else "highest")
    record = {"jax_default_matmul_precision": jax.config.jax_default_matmul_precision}
    try:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "default"
        record["torch_allow_tf32"] = precision == "default"
    except ImportError:
        pass
    return record


def run(args, save=None) -> dict:
    """Measure everything; returns the JSON-able results (and passes them, as they grow, to
    ``save`` after every run)."""
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    precision = set_precision(args.precision)
    devices = [jax.devices("cpu")[0]] + [d for d in jax.devices() if d.platform == "gpu"][:1]
    devices = [d for d in devices if d.platform in args.devices]
    records, missing = [], {}
    results = {"environment": environment(args.threads), "precision": precision, "records": records}
    results.update(memory=[], missing=missing)
    for device in devices:
        for cell, B, T, F, H in runs_of(args):
            built = {}
            for name in args.impls:
                pair = IMPLS[name](cell, B, T, F, H, device)
                if isinstance(pair, str):
                    missing[f"{name}/{cell}/{device.platform}"] = pair
                else:
                    built[name] = pair
            if "jaxrnn" in built and args.memory:
                built["remat"] = {"fwdbwd": impl_jaxrnn(cell, B, T, F, H, device, remat=True)["fwdbwd"]}
            # Interleaved: every round times each implementation once, so a drift of the
            # machine during the run moves all of them alike and cancels in the ratios.
            times = {(name, mode): [] for name, pair in built.items() for mode in pair}
            for _ in range(args.repeats):
                for name, mode in times:
                    times[name, mode] += timed(built[name][mode][1], 1)
            for (name, mode), ts in times.items():
                if name == "remat":
                    continue
                compile_s, _, compiled = built[name][mode]
                rec = {
                    "impl": name,
                    "device": device.platform,
                    "cell": cell,
                    "mode": mode,
                    "B": B,
                    "T": T,
                    "F": F,
                    "H": H,
                    "median_s": statistics.median(ts),
                    "times_s": ts,
                    "compile_s": compile_s,
                }
                if name == "jaxrnn" and mode == "fwdbwd":
                    rec["memory_bytes"] = memory_bytes(compiled)
                    if args.memory:
                        remat_compile_s, _, remat_compiled = built["remat"]["fwdbwd"]
                        rec["memory_bytes_remat"] = memory_bytes(remat_compiled)
                        rec["median_s_remat"] = statistics.median(times["remat", "fwdbwd"])
                        rec["compile_s_remat"] = remat_compile_s
                records.append(rec)
                print(
                    f"{device.platform} {cell:4s} T={T:6d} {name:8s} {mode:6s} "
                    f"{1e3 * rec['median_s']:9.2f} ms" + (f"  (compile {compile_s:.2f} s)" if compile_s else ""),
                    flush=True,
                )
            del built
            if save:
                save(results)
    for device in devices:
        results["memory"] += memory_vs_T(args.cells, args.batch, args.input, args.hidden, args.memory_lengths, device)
    return results


def table(results: dict) -> str:
    """Markdown: per device, cell and T, jaxrnn's median time and its ratio to each peer."""
    recs = results["records"]
    lines = []
    peers = [p for p in IMPLS if p != "jaxrnn" and any(r["impl"] == p for r in recs)]
    for device in sorted({r["device"] for r in recs}):
        lines.append(f"\n### {device}\n")
        head = "| cell | B | F | H | T | mode | jaxrnn ms | " + " | ".join(f"{p} ms | jaxrnn/{p}" for p in peers) + " |"
        lines += [head, "|" + "---|" * (7 + 2 * len(peers))]
        index = {(r["impl"], r["device"], r["cell"], r["mode"], r["T"], r["B"], r["H"]): r for r in recs}
        for r in recs:
            if r["impl"] != "jaxrnn" or r["device"] != device:
                continue
            cells = [r["cell"], *(str(r[k]) for k in "BFHT"), r["mode"], f"{1e3 * r['median_s']:.2f}"]
            for p in peers:
                q = index.get((p, device, r["cell"], r["mode"], r["T"], r["B"], r["H"]))
                cells += (
                    ["-", "-"] if q is None else [f"{1e3 * q['median_s']:.2f}", f"{r['median_s'] / q['median_s']:.2f}"]
                )
            lines.append("| " + " | ".join(cells) + " |")
        mem = [r for r in recs if r["device"] == device and r.get("memory_bytes_remat")]
        if mem:
            lines += [
                "\nMemory (XLA buffer analysis of fwd+bwd) and compile time, jaxrnn:\n",
                "| cell | T | MiB | MiB remat | remat/plain memory | ms | ms remat | remat/plain time "
                "| compile s | compile s remat |",
                "|---" * 10 + "|",
            ]
            for r in mem:
                lines.append(
                    f"| {r['cell']} | {r['T']} | {r['memory_bytes'] / 2**20:.1f} | "
                    f"{r['memory_bytes_remat'] / 2**20:.1f} | {r['memory_bytes_remat'] / r['memory_bytes']:.2f} | "
                    f"{1e3 * r['median_s']:.2f} | {1e3 * r['median_s_remat']:.2f} | "
                    f"{r['median_s_remat'] / r['median_s']:.2f} | {r['compile_s']:.2f} | {r['compile_s_remat']:.2f} |"
                )
        long = [r for r in results.get("memory", []) if r["device"] == device]
        if long:
            lines += [
                "\nMemory vs T (XLA buffer analysis of jaxrnn's fwd+bwd, compiled, not run):\n",
                "| cell | B | F | H | T | MiB | MiB remat | remat/plain |",
                "|---" * 8 + "|",
            ]
            for r in long:
                lines.append(
                    f"| {r['cell']} | {r['B']} | {r['F']} | {r['H']} | {r['T']} | {r['memory_bytes'] / 2**20:.1f} | "
                    f"{r['memory_bytes_remat'] / 2**20:.1f} | {r['memory_bytes_remat'] / r['memory_bytes']:.2f} |"
                )
    if results["missing"]:
        lines += ["\nNot measured:\n"] + [f"- {k}: {v}" for k, v in sorted(results["missing"].items())]
    return "\n".join(lines)


def plot(results: dict, folder: str) -> list[str]:
    """time vs T, log-log, one figure per device: a row per mode, a column per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs, written = results["records"], []
    for device in sorted({r["device"] for r in recs}):
        cells = sorted({r["cell"] for r in recs if r["device"] == device})
        fig, axes = plt.subplots(2, len(cells), figsize=(4 * len(cells), 6), layout="constrained", squeeze=False)
        for j, cell in enumerate(cells):
            for i, mode in enumerate(["fwd", "fwdbwd"]):
                ax = axes[i][j]
                for impl in IMPLS:
                    pts = sorted(
                        (r["T"], r["median_s"])
                        for r in recs
                        if (r["impl"], r["device"], r["cell"], r["mode"]) == (impl, device, cell, mode)
                    )
                    if pts:
                        ax.loglog(*zip(*pts), "o-", label=impl, lw=1, ms=3)
                ax.set_title(f"{device} {cell} {'forward' if mode == 'fwd' else 'forward+backward'}", fontsize=9)
                ax.set_xlabel("T")
                ax.set_ylabel("seconds")
        axes[0][0].legend(fontsize=8)
        path = os.path.join(folder, f"time_vs_T_{device}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> None:
    """Parse arguments, measure, write results.json, results.md and the plots."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS))
    p.add_argument("--lengths", type=int, nargs="+")
    p.add_argument("--batch", type=int)
    p.add_argument("--input", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--devices", nargs="+", choices=["cpu", "gpu"], default=["cpu", "gpu"], help="JAX platforms timed")
    p.add_argument("--precision", choices=["default", "highest"], default="default", help="float32 matmul precision")
    p.add_argument("--memory", action="store_true", help="also measure jaxrnn with remat")
    p.add_argument("--memory-lengths", type=int, nargs="*", default=[], help="T for memory alone (not timed)")
    p.add_argument("--out", default="benchmarks/results/seq_lengths")
    args = p.parse_args(argv)
    preset = PRESETS[args.preset]
    for field in ("cells", "lengths", "batch", "input", "hidden"):
        if getattr(args, field) is None:
            setattr(args, field, preset.get(field))
    os.makedirs(args.out, exist_ok=True)
    command = f"python -m benchmarks.seq_lengths {' '.join(sys.argv[1:] if argv is None else argv)}"
    results = run(args, save=lambda results: write(results, args.out, command))
    print(write(results, args.out, command))
    for path in plot(results, args.out):
        print("wrote", path)


def write(results: dict, folder: str, command: str) -> str:
    """results.json and results.md into ``folder``; returns the table."""
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = table(results)
    with open(os.path.join(folder, "results.md"), "w") as f:
        f.write(f"Command: `{command}`\n\nEnvironment: {json.dumps(results['environment'])}\n{text}\n")
    return text


if __name__ == "__main__":
    main()
