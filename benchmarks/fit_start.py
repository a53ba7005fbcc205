"""What a small `fit` costs outside its epochs: three `fit` calls of the same model and
shapes in one process, in two fresh processes one after the other, without and with JAX's
persistent compilation cache.

    python -m benchmarks.fit_start --out benchmarks/results/fit_start

The work: a GRU of 32 units, many-to-one, on 50 series of 40 steps (a UCR/UEA-sized set),
20 epochs of 4 updates with validation; then, in the same process, a bare loop of the
same 80 updates (``eqx.filter_jit`` of one update with the default optimizer, batches
gathered on the host side of the loop, no validation), twice: its first run compiles,
its second is the time to compare a later ``fit`` with. Each run is a new Python process (JAX starts
cold); "cache" runs share one cache folder (``jax_compilation_cache_dir``, programs that
took >= 0.1 s to compile), emptied before the first of them, so the second cached process
reads what the first wrote. Per call: wall time, XLA compilations and their seconds (JAX's
monitoring events), fit's setup seconds and the epochs' seconds. No repeats: the point is
the difference between a first and a later call, seconds against tenths.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from benchmarks.common import environment, write_results

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import jax, jax.numpy as jnp
    if os.environ.get("FIT_START_CACHE"):
        jax.config.update("jax_compilation_cache_dir", os.environ["FIT_START_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    from jax import monitoring
    import jaxrnn

    compiles = []
    monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(secs) if name.endswith("backend_compile_duration") else None
    )
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(k[0], (50, 40, 3))
    y = (x[:, :, 0].sum(1) > 0).astype(jnp.int32)
    rows = []
    for call in range(3):
        model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 32, key=k[1]), jaxrnn.Head(32, 2, key=k[2]))
        compiles.clear()
        started = time.perf_counter()
        _, h = jaxrnn.fit(model, jaxrnn.Batches((x, y), 16), key=k[3], loss="cross_entropy", epochs=20,
                          validation=(x, y), verbose=False)
        rows.append(dict(call=call + 1, seconds=time.perf_counter() - started, compiles=len(compiles),
                         compile_seconds=sum(compiles), setup_seconds=h.setup_seconds,
                         epoch_seconds=sum(h.epoch_seconds)))
    import equinox as eqx, optax
    from jaxrnn.train.fitting import default_optimizer
    opt = default_optimizer()

    @eqx.filter_jit
    def update(m, o, xb, yb):
        def loss(m):
            logits = m(xb)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))
        g = eqx.filter_grad(loss)(m)
        u, o = opt.update(g, o, eqx.filter(m, eqx.is_inexact_array))
        return eqx.apply_updates(m, u), o

    for call in range(2):  # the bare loop: the same 80 updates (20 epochs of 4 batches of 16), no validation
        m = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 32, key=k[1]), jaxrnn.Head(32, 2, key=k[2]))
        o = opt.init(eqx.filter(m, eqx.is_inexact_array))
        compiles.clear()
        started = time.perf_counter()
        for epoch in range(20):
            order = jax.random.permutation(jax.random.fold_in(k[3], epoch), 50)
            for b in range(4):
                i = order[b * 16 : (b + 1) * 16]
                m, o = update(m, o, x[i], y[i])
        jax.block_until_ready(eqx.filter(m, eqx.is_array))
        rows.append(dict(call=f"bare {call + 1}", seconds=time.perf_counter() - started, compiles=len(compiles),
                         compile_seconds=sum(compiles), setup_seconds=0.0, epoch_seconds=0.0))
    print(json.dumps(rows))
    """
)


def run_process(cache: str | None) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    if cache is not None:
        env["FIT_START_CACHE"] = cache
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(runs: list[dict]) -> str:
    lines = [
        "| cache | process | call | wall s | XLA compilations | compile s | setup s | epochs s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in run["calls"]:
            bare = str(r["call"]).startswith("bare")  # no setup or epochs of fit's to show
            parts = ("-", "-") if bare else (f"{r['setup_seconds']:.2f}", f"{r['epoch_seconds']:.2f}")
            lines.append(
                f"| {run['cache']} | {run['process']} | {r['call']} | {r['seconds']:.2f} | {r['compiles']} "
                f"| {r['compile_seconds']:.2f} | {parts[0]} | {parts[1]} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    runs = []
    folder = tempfile.mkdtemp(prefix="fit_start_cache_")
    try:
        for cache in (None, folder):
            for process in (1, 2):
                calls = run_process(cache)
                runs.append({"cache": "yes" if cache else "no", "process": process, "calls": calls})
                print(runs[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = table(runs)
    header = "Three fit calls of the same model and shapes per process, two processes, without and with JAX's cache."
    write_results(args.out, "fit_start", argv, header, {"environment": environment(0), "runs": runs}, text)
    print(text)


if __name__ == "__main__":
    main()
