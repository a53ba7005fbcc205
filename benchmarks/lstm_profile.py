"""Where the LSTM layer's forward time goes on the CPU, piece by piece, against PyTorch.

    python -m benchmarks.lstm_profile                  # B 32, F 128, H 256, T 256
    python -m benchmarks.lstm_profile --length 1024 --out /tmp/profile.md

Each row times one program (median of --rounds rounds, every program timed once a round,
interleaved; compile and warm-up excluded), per step (divided by T):
- jaxrnn layer forward, and forward+backward;
- the input projection alone: of all T steps in one GEMM, and in the layer's CPU chunks
  (``jaxrnn.layers.cpu_chunks``) with ``b_xh`` as a column of the GEMM;
- a loop of the recurrent GEMM alone (``h <- (h @ W_hh.T)[:, :H]``, no gate maths);
- a loop of the gate maths alone (the LSTM's pointwise step fed from the projected
  inputs, no GEMM);
- PyTorch's ``nn.LSTM`` forward and forward+backward (also on one thread, as XLA:CPU
  runs one program), and a loop of ``torch.mm`` of the
  same shape (the GEMM PyTorch would run per step outside oneDNN's fused LSTM).

With ``--thunks`` a second table splits the layer's forward+backward into what XLA:CPU
runs: each thunk of the compiled program (a GEMM, a fusion of pointwise maths, a copy),
its runs and microseconds per call, read from ``jax.profiler.trace`` of ``--thunk-calls``
calls (``jax.profiler.ProfileData``), with what the optimised HLO says it computes. Loop
thunks (``while``) are left out: their time is that of the thunks inside them.
"""

import argparse
import collections
import os
import re
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp

import jaxrnn
from benchmarks.common import write_markdown
from jaxrnn.layers import bias_column, cpu_chunks, read_ahead


def programs(B: int, T: int, F: int, H: int) -> dict:
    """{name: zero-argument callable that blocks until its result is ready}."""
    cell = jaxrnn.LSTMCell(F, H, key=jax.random.PRNGKey(0))
    layer = jaxrnn.Recurrent(cell)
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    xw = cell.project(jnp.swapaxes(x, 0, 1))
    h0 = jnp.zeros((B, H))

    def gemm_loop(W, h0):
        return jax.lax.scan(lambda h, _: ((h @ W.T)[:, :H], None), h0, None, length=T)[0]

    chunk = max(cpu_chunks.MIN_STEPS, cpu_chunks.CHUNK_BYTES // (B * 4 * H * 4))

    def chunked_projection(cell, x):
        xs = jnp.swapaxes(x, 0, 1)
        n = -(-T // chunk)
        xs = jnp.concatenate([xs, jnp.zeros((n * chunk - T, B, F), xs.dtype)])
        return jax.lax.map(lambda xc: bias_column.project(cell, xc), xs.reshape(n, chunk, B, F))

    def pointwise_loop(cell, xw):
        return read_ahead.scan(lambda s, a: (cell.activate(s, a),) * 2, cell.init_state((B,)), xw)[0]

    jitted = {
        "jaxrnn layer forward": (jax.jit(lambda m, x: m(x)[0]), (layer, x)),
        "jaxrnn layer fwd+bwd": (jax.jit(jax.grad(lambda m, x: jnp.sum(m(x)[0]))), (layer, x)),
        "projection of all T (one GEMM)": (jax.jit(lambda c, x: c.project(jnp.swapaxes(x, 0, 1))), (cell, x)),
        "projection in the layer's chunks": (jax.jit(chunked_projection), (cell, x)),
        "loop of the recurrent GEMM alone": (jax.jit(gemm_loop), (cell.W_hh, h0)),
        "loop of the gate maths alone": (jax.jit(pointwise_loop), (cell, xw)),
    }
    out = {}
    for name, (fn, args) in jitted.items():
        compiled = fn.lower(*args).compile()
        compiled(*args)
        out[name] = lambda c=compiled, a=args: jax.block_until_ready(c(*a))
    try:
        import torch
    except ImportError:
        return out
    torch.set_num_threads(os.cpu_count())
    module = torch.nn.LSTM(F, H, batch_first=True)
    tx, th, tW = torch.randn(B, T, F), torch.zeros(B, H), torch.randn(4 * H, H)

    def torch_fwd():
        with torch.no_grad():
            module(tx)

    def torch_fwdbwd():
        module.zero_grad(set_to_none=True)
        module(tx)[0].sum().backward()

    def torch_fwdbwd_one_thread():
        torch.set_num_threads(1)
        torch_fwdbwd()
        torch.set_num_threads(os.cpu_count())

    def torch_gemm_loop():
        h = th
        with torch.no_grad():
            for _ in range(T):
                h = torch.mm(h, tW.t())[:, :H]

    out.update(
        {
            "PyTorch LSTM forward": torch_fwd,
            "PyTorch LSTM fwd+bwd": torch_fwdbwd,
            "PyTorch LSTM fwd+bwd, 1 thread": torch_fwdbwd_one_thread,
            "PyTorch loop of torch.mm": torch_gemm_loop,
        }
    )
    for f in (torch_fwd, torch_fwdbwd, torch_gemm_loop):
        f()
    return out


def describe_thunks(hlo: str) -> dict[str, str]:
    """{instruction name: what it computes} from optimised HLO text: a fusion by the last
    operation of the computation it calls that is not a reshape in place (``dot``,
    ``concatenate``, ``copy`` for a transpose, ...), anything else by its opcode; each with
    its result shape."""
    roots, out = {}, {}
    computation = None
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?%(\S+) \(", line)
        if head:
            computation = head.group(1)
        inst = re.match(r"^\s*(?:ROOT )?%(\S+) = (\S+) ([\w-]+)\(", line)
        if not inst:
            continue
        name, shape, op = inst.groups()
        if op not in ("bitcast", "parameter", "constant", "tuple", "get-tuple-element"):
            roots[computation] = op
        called = re.search(r"calls=%([\w.-]+)", line)
        out[name] = (shape, op, called.group(1) if called and op == "fusion" else None)
    return {n: f"{roots.get(c, op) if c else op} {shape}" for n, (shape, op, c) in out.items()}


def thunk_times(compiled, args, calls: int) -> list[tuple[str, str, float, float]]:
    """``(thunk, what, runs per call, us per call)`` of ``compiled(*args)``, slowest first."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
        (path,) = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".xplane.pb")]
        profile = jax.profiler.ProfileData.from_file(path)
    what = describe_thunks(compiled.as_text())
    total, runs = collections.Counter(), collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            for event in line.events:
                if event.name in what and not event.name.startswith("while"):
                    total[event.name] += event.duration_ns
                    runs[event.name] += 1
    return [(n, what[n], runs[n] / calls, t / calls / 1e3) for n, t in total.most_common()]


def thunk_table(B: int, T: int, F: int, H: int, calls: int) -> str:
    """The markdown table of the layer's forward+backward, thunk by thunk."""
    layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(F, H, key=jax.random.PRNGKey(0)))
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    compiled = jax.jit(jax.grad(lambda m, x: jnp.sum(m(x)[0]))).lower(layer, x).compile()
    for _ in range(3):
        jax.block_until_ready(compiled(layer, x))
    rows = thunk_times(compiled, (layer, x), calls)
    total, runs = sum(us for *_, us in rows), sum(r for _, _, r, _ in rows)
    lines = [
        f"Layer forward+backward, thunk by thunk ({calls} traced calls; {runs:g} thunk runs and "
        f"{total / 1e3:.2f} ms in thunks a call):",
        "",
        "| thunk | computes | runs a call | us a call | share |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {w} | {r:g} | {us:.0f} | {us / total:.1%} |" for n, w, r, us in rows if us / total >= 0.005]
    return "\n".join(lines)


def main(argv=None) -> None:
    """Measure and write the markdown table (and print it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--thunks", action="store_true", help="also the thunk-by-thunk table of the layer's fwd+bwd")
    p.add_argument("--thunk-calls", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results/lstm_profile.md")
    args = p.parse_args(argv)
    B, T, F, H = args.batch, args.length, args.input, args.hidden
    progs = programs(B, T, F, H)
    times = {name: [] for name in progs}
    for _ in range(args.rounds):
        for name, call in progs.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    lines = ["| program | ms | us per step |", "|---|---|---|"]
    for name, ts in times.items():
        ms = 1e3 * statistics.median(ts)
        lines.append(f"| {name} | {ms:.2f} | {1e3 * ms / T:.1f} |")
    text = "\n".join(lines)
    if args.thunks:
        text += "\n\n" + thunk_table(B, T, F, H, args.thunk_calls)
    print(text)
    method = f"B {B}, F {F}, H {H}, T {T}; median of {args.rounds} interleaved rounds; compile and warm-up excluded."
    write_markdown(args.out, "lstm_profile", argv, method, text)


if __name__ == "__main__":
    main()
