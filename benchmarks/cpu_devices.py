"""Where the second CPU core goes: one gradient of the row-MNIST model, whole or split in
two, on one core, on two, and on two CPU devices of one process run four ways.

    python -m benchmarks.cpu_devices --out benchmarks/results/cpu_devices

The work: the gradient of the cross-entropy of ``ManyToOne(make_rnn(cell, 28, 128))`` on
a batch of 128 sequences of 28 steps of 28 features (row-by-row MNIST's shape; random
data), LSTM and GRU. Each process starts JAX afresh with ``JAX_NUM_CPU_DEVICES=2``; the
"one core" process is pinned to core 0 (``os.sched_setaffinity``) before JAX starts. Per
way, the best of 3 rounds of 30 calls, after one call that compiles:

- ``whole``: the whole batch on device 0;
- ``half``: half of it on device 0;
- ``sharded``: the whole batch in one program split by rows over the two devices
  (``NamedSharding``, the model replicated), the split left to XLA;
- ``per device``: the same split, each device running the program of its rows and the
  two adding their gradients (``jax.shard_map``, ``jaxrnn.train.data_parallel``: what
  ``Placement()`` does);
- ``two calls``: one half on each device, dispatched one after the other from one
  thread, then both awaited;
- ``two threads``: one half on each device, each dispatched and awaited by its own host
  thread.

If the two devices ran at once on the two cores, ``sharded``, ``per device``, ``two
calls`` and ``two threads`` would each take about ``half``.
"""

import argparse
import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time
    if sys.argv[1] == "1":
        os.sched_setaffinity(0, {0})
    os.environ["JAX_NUM_CPU_DEVICES"] = "2"
    import equinox as eqx
    import jax, jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P
    import jaxrnn
    from jaxrnn.train import data_parallel

    B, T, F, H, calls = (int(a) for a in sys.argv[2:7])
    rows = []
    for name in ("lstm", "gru"):
        cell = {"lstm": jaxrnn.LSTMCell, "gru": jaxrnn.GRUCell}[name]
        k = jax.random.split(jax.random.PRNGKey(0), 4)
        x, y = jax.random.normal(k[0], (B, T, F)), jax.random.randint(k[1], (B,), 0, 10)
        model = jaxrnn.ManyToOne(jaxrnn.make_rnn(cell, F, H, key=k[2]), jaxrnn.Head(H, 10, key=k[3]))
        loss = lambda m, x, y: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(m(x)), y[:, None], 1))
        grad = eqx.filter_jit(eqx.filter_grad(loss))
        d0, d1 = jax.devices()[:2]
        on = lambda d, *a: [jax.device_put(t, d) for t in a]
        a, b = on(d0, model, x[: B // 2], y[: B // 2]), on(d1, model, x[B // 2 :], y[B // 2 :])
        mesh = jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=[d0, d1])
        by_rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        sharded = (jax.device_put(model, replicated), jax.device_put(x, by_rows), jax.device_put(y, by_rows))

        def on_batch(m, carry, batch, key):
            x, y = batch
            total = -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(m(x)), y[:, None], 1))
            return total / len(y), (carry, {"loss": (total, jnp.asarray(len(y), total.dtype))})

        per_device = eqx.filter_jit(
            lambda m, x, y: data_parallel.value_and_grad(on_batch, mesh, m, None, (x, y), jax.random.PRNGKey(0))[1]
        )

        def threads():
            out = [None, None]
            def run(i, args):
                out[i] = jax.block_until_ready(grad(*args))
            workers = [threading.Thread(target=run, args=(i, args)) for i, args in enumerate((a, b))]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            return out

        whole = on(d0, model, x, y)
        ways = {
            "whole": lambda: grad(*whole),
            "half": lambda: grad(*a),
            "sharded": lambda: grad(*sharded),
            "per device": lambda: per_device(*sharded),
            "two calls": lambda: (grad(*a), grad(*b)),
            "two threads": threads,
        }
        for way, fn in ways.items():
            jax.block_until_ready(fn())
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(calls):
                    out = fn()
                jax.block_until_ready(out)
                best = min(best, (time.perf_counter() - started) / calls)
            rows.append({"cell": name, "way": way, "ms": best * 1e3})
    print(json.dumps(rows))
    """
)


def run_process(cores: int, shape: tuple[int, ...], calls: int) -> list[dict]:
    """One fresh process, pinned to one core or free on all: its rows."""
    args = [str(cores), *(str(s) for s in shape), str(calls)]
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    ways = list(dict.fromkeys(r["way"] for r in rows))
    ms = {(r["cores"], r["cell"], r["way"]): r["ms"] for r in rows}
    lines = ["| cell | way | one core, ms | two cores, ms | one core / two |", "|---|---|---|---|---|"]
    for cell in cells:
        for way in ways:
            one, two = ms[(1, cell, way)], ms[(2, cell, way)]
            lines.append(f"| {cell} | {way} | {one:.1f} | {two:.1f} | {one / two:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    from benchmarks.common import environment, write_results

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tiny", action="store_true", help="a few steps and units: checks the harness, measures nothing")
    args = p.parse_args(argv)
    shape, calls = ((8, 4, 3, 8), 2) if args.tiny else ((128, 28, 28, 128), 30)
    rows = [dict(r, cores=cores) for cores in (1, 2) for r in run_process(cores, shape, calls)]
    text = table(rows)
    header = (
        "One gradient of the row-MNIST model (B, T, F, H = "
        + ", ".join(map(str, shape))
        + "), whole or split over two CPU devices, in a process on one core and on two."
    )
    write_results(args.out, "cpu_devices", argv, header, {"environment": environment(0), "rows": rows}, text)
    print(text)


if __name__ == "__main__":
    main()
