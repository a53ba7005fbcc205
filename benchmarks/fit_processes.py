"""Every core by processes: ``fit`` on the row-MNIST shape in one process, and in one
process per core (``jax.distributed``, gloo collectives on 127.0.0.1), each process on its
own core holding its share of the data.

    python -m benchmarks.fit_processes --out benchmarks/results/fit_processes

The work: ``ManyToOne(make_rnn(cell, 28, 128))``, LSTM and GRU, on 4,096 random sequences
of 28 steps of 28 features with 10 classes, global batch 128 (32 updates an epoch), Adam,
3 epochs; the epoch time is the median of epochs 2 and 3 (the first compiles). Three
ways, each a fresh set of processes, in this order per cell, ``--rounds`` times
interleaved:

- ``1 process, 1 core``: one process pinned to core 0 (``os.sched_setaffinity``);
- ``1 process, all cores``: one process, free;
- ``N processes, a core each``: one process per core, pinned to it, each with 1/N of the
  data and of every batch; ``fit``'s default ``Placement()`` spans the processes (the
  gradient is averaged across them by an all-reduce every update);
- ``N processes, free``: the same, no process pinned.

Threads: XLA's default in each process; one JAX device a process (``JAX_NUM_CPU_DEVICES=1``,
where jaxrnn would make one per core): the processes are the split measured here, the
devices of one process are ``benchmarks.cpu_devices``'.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    core, pid, nproc, port, cell, n, epochs = sys.argv[1:8]
    pid, nproc, n, epochs = int(pid), int(nproc), int(n), int(epochs)
    if core != "all":
        os.sched_setaffinity(0, {int(core)})
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if nproc > 1:
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
    import jaxrnn

    k = jax.random.split(jax.random.PRNGKey(0), 5)
    x, y = jax.random.normal(k[0], (n, 28, 28)), jax.random.randint(k[1], (n,), 0, 10)
    share = n // nproc
    mine = (x[pid * share : (pid + 1) * share], y[pid * share : (pid + 1) * share])
    C = {"lstm": jaxrnn.LSTMCell, "gru": jaxrnn.GRUCell}[cell]
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(C, 28, 128, key=k[2]), jaxrnn.Head(128, 10, key=k[3]))
    _, h = jaxrnn.fit(
        model, jaxrnn.Batches(mine, 128 // nproc), key=k[4], loss="cross_entropy", epochs=epochs, verbose=False
    )
    if pid == 0:
        print(json.dumps({"epoch_seconds": h.epoch_seconds, "loss": h.loss[-1]}))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_way(cores: list[str], cell: str, n: int, epochs: int) -> dict:
    """One process per entry of ``cores`` (a core number, or "all"); process 0's record."""
    port, nproc = str(free_port()), len(cores)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, core, str(pid), str(nproc), port, cell, str(n), str(epochs)],
            env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid, core in enumerate(cores)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(err[-3000:])
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main(argv=None) -> None:
    from benchmarks.common import environment, write_results

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tiny", action="store_true", help="the LSTM, 256 sequences, 2 epochs: checks the harness")
    args = p.parse_args(argv)
    n, epochs = (256, 2) if args.tiny else (4096, 3)
    cells = ("lstm",) if args.tiny else ("lstm", "gru")
    cores = os.cpu_count() or 1
    ways = {
        "1 process, 1 core": ["0"],
        "1 process, all cores": ["all"],
        f"{cores} processes, a core each": [str(c) for c in range(cores)],
        f"{cores} processes, free": ["all"] * cores,
    }
    rows = []
    for cell in cells:
        for _ in range(args.rounds):
            for way, where in ways.items():
                record = run_way(where, cell, n, epochs)
                rows.append({"cell": cell, "way": way, **record})
                print(cell, way, record, flush=True)
    lines = [
        "| cell | way | epoch s (median) | speed-up over 1 core |",
        "|---|---|---|---|",
    ]
    for cell in cells:
        epoch = {
            way: statistics.median(
                s for r in rows if r["cell"] == cell and r["way"] == way for s in r["epoch_seconds"][1:]
            )
            for way in ways
        }
        for way, seconds in epoch.items():
            lines.append(f"| {cell} | {way} | {seconds:.3f} | {epoch['1 process, 1 core'] / seconds:.2f} |")
    text = "\n".join(lines)
    header = (
        f"fit on the row-MNIST shape ({n} sequences, batch 128, {epochs} epochs) in one process and in one per core."
    )
    write_results(args.out, "fit_processes", argv, header, {"environment": environment(0), "rows": rows}, text)
    print(text)


if __name__ == "__main__":
    main()
