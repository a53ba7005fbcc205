"""Time per update of ``jaxrnn.fit`` against a bare jit + Optax loop and a PyTorch loop.

    python -m benchmarks.fit_throughput                      # the two shapes, 5 interleaved rounds
    python -m benchmarks.fit_throughput --repeats 1 --shapes 20,8,32 --out /tmp/fit
    python -m benchmarks.fit_throughput --shapes 50,8,64 50,8,1024,256 --impls fit bare torch  # on a GPU

The model: an LSTM many-to-one regressor (one layer, linear head), Adam(1e-3), MSE,
batches of 32 (a shape's fourth number, if given) drawn by a fresh permutation every
epoch, data already in memory (on the GPU where JAX's default device is one; PyTorch
then runs on CUDA too, cuDNN's LSTM, synchronised at the end of each run). Per
update time = (time of 4 epochs - time of 1 epoch) / (3 x updates per epoch): what is
left is the steady state, compilation (paid in both runs) excluded. Every fit call
builds and compiles its update anew; JAX's persistent compilation cache (a temporary
folder) lets each call after the warm-up load it instead of recompiling, so that the
compile time's run-to-run jitter (~0.1 s, ~1 ms per update here) does not swamp the
difference. Implementations:

- ``fit``: ``jaxrnn.fit(model, Batches((x, y), B), ...)`` with its default block of updates per call;
- ``fit_block1``: the same with ``steps_per_execution=1`` (one device call per update);
- ``fit_stream``: ``jaxrnn.fit(model, HostBatches(...))``: the same data kept on the host
  as numpy, each epoch's batches drawn by a numpy permutation and streamed to the device
  by fit's prefetching reader (its default block for streams): what streaming costs
  against the on-device source;
- ``fit_sharded`` (not by default; needs several devices): ``fit(..., placement=Placement())``, each
  batch split across every device. On a CPU jaxrnn makes one device per core at import
  (``python -m benchmarks.fit_throughput --impls fit fit_sharded bare torch``): XLA:CPU
  runs a small loop's dot on one core, the devices run their parts of the batch on all;
- ``fit_default`` (not by default): ``fit`` without ``placement=``, as a user runs it: on a
  CPU one device per core, each batch split over as many as its work pays for
  (``Placement.for_batch``; the devices it used are in results.json);
- ``bare``: ``eqx.filter_jit`` of one Optax update, called once per batch from a Python
  loop, batches sliced from a device permutation (the ten-line loop a JAX user writes);
- ``torch``: ``nn.LSTM`` + ``nn.Linear``, ``torch.optim.Adam``, the same loop, with as
  many threads as the machine's cores (PyTorch's default);
- ``torch_1thread``: the same on one thread, the cores one XLA:CPU device uses for this
  model (its loop runs one thunk at a time, docs/performance.md): the comparison at
  equal cores.

Each round times every implementation once (interleaved, so that the machine's drift
cancels in the ratios); the table gives medians. Writes results.json and results.md.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment

SHAPES = [(20, 8, 32), (50, 8, 64)]  # (T, F, H)
BATCH, EXAMPLES = 32, 2048


def make_data(T: int, F: int, n: int = EXAMPLES):
    x = jax.random.normal(jax.random.PRNGKey(1), (n, T, F))
    y = jnp.tanh(x[:, :, :1].sum(1) / np.sqrt(T))
    return x, y


def make_model(F: int, H: int):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=k1), jaxrnn.Head(H, 1, key=k2))


def host_batches(x, y, batch: int) -> jaxrnn.HostBatches:
    """The examples as host batches, a fresh numpy permutation every epoch."""
    x, y = np.asarray(x), np.asarray(y)
    epoch = iter(range(10**9))

    def one_epoch():
        order = np.random.default_rng(next(epoch)).permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]

    return jaxrnn.HostBatches(one_epoch)


PLACEMENTS = {"one": lambda: jaxrnn.Placement(devices=1), "all": jaxrnn.Placement, "default": lambda: None}
"""run_fit's placements: one device, every device (``Placement()``), fit's default."""


def run_fit(T, F, H, n, epochs, batch=BATCH, block=None, placement="one", stream=False):
    x, y = make_data(T, F, n)
    model, _ = jaxrnn.fit(
        make_model(F, H),
        host_batches(x, y, batch) if stream else jaxrnn.Batches((x, y), batch),
        key=jax.random.PRNGKey(2),
        optimizer=optax.adam(1e-3),
        epochs=epochs,
        verbose=False,
        steps_per_execution=block,
        placement=PLACEMENTS[placement](),
    )
    jax.block_until_ready(eqx.filter(model, eqx.is_array))


def bare_loop(T, F, H, n, batch=BATCH):
    """The ten-line loop; returns ``train(epochs)``, compiled by a warm-up call."""
    x, y = make_data(T, F, n)
    opt = optax.adam(1e-3)

    @eqx.filter_jit
    def step(model, opt_state, xb, yb):
        loss, grads = eqx.filter_value_and_grad(lambda m: jnp.mean((m(xb) - yb) ** 2))(model)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    def train(epochs):
        model = make_model(F, H)
        opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
        for epoch in range(epochs):
            perm = jax.random.permutation(jax.random.PRNGKey(epoch), n)
            for i in range(n // batch):
                idx = perm[i * batch : (i + 1) * batch]
                model, opt_state, loss = step(model, opt_state, x[idx], y[idx])
        jax.block_until_ready(loss)

    train(1)
    return train


def torch_loop(T, F, H, n, threads: int, batch=BATCH):
    """PyTorch's loop on ``threads`` threads (on CUDA when JAX's default backend is a
    GPU); returns ``train(epochs)``, warmed up."""
    import torch

    device = "cuda" if jax.default_backend() == "gpu" else "cpu"
    x, y = (torch.from_numpy(np.array(a)).to(device) for a in make_data(T, F, n))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = torch.nn.LSTM(F, H, batch_first=True), torch.nn.Linear(H, 1)

        def forward(self, xb):
            return self.head(self.lstm(xb)[1][0][-1])

    def train(epochs):
        torch.set_num_threads(threads)  # per call: the two torch trainers interleave
        torch.manual_seed(0)
        net = Net().to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(epochs):
            perm = torch.randperm(n, device=device)
            for i in range(n // batch):
                idx = perm[i * batch : (i + 1) * batch]
                opt.zero_grad()
                loss = torch.mean((net(x[idx]) - y[idx]) ** 2)
                loss.backward()
                opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    train(1)
    return train


def per_update(train, n: int, batch: int, epochs=(1, 4)) -> float:
    """(time of the long run - time of the short run) / extra updates."""
    times = []
    for e in epochs:
        start = time.perf_counter()
        train(e)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / ((epochs[1] - epochs[0]) * (n // batch))


def main(argv=None) -> dict:
    """Measure every implementation on every shape; write results.json and results.md."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=[",".join(map(str, s)) for s in SHAPES], help="T,F,H[,batch]")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--examples", type=int, default=EXAMPLES, help="training examples (updates per epoch: this / 32)")
    impls = ["fit", "fit_block1", "fit_sharded", "fit_default", "fit_stream", "bare", "torch", "torch_1thread"]
    p.add_argument(
        "--impls", nargs="+", default=[i for i in impls if i not in ("fit_sharded", "fit_default")], choices=impls
    )
    p.add_argument("--out", default="benchmarks/results/fit_throughput")
    args = p.parse_args(argv)
    if "fit_sharded" in args.impls and jax.device_count() < 2:
        p.error(
            f"--impls fit_sharded needs several devices, found {jax.device_count()} "
            "(jaxrnn makes one CPU device per core unless JAX_NUM_CPU_DEVICES is set)"
        )
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    shapes = [s if len(s) == 4 else (*s, BATCH) for s in shapes]
    cache = {
        "jax_compilation_cache_dir": tempfile.mkdtemp(prefix="jaxrnn-fit-bench-"),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    before = {name: getattr(jax.config, name) for name in cache}
    for name, value in cache.items():
        jax.config.update(name, value)
    os.makedirs(args.out, exist_ok=True)
    try:
        return measure(shapes, args, save=lambda results: write(results, args.out))
    finally:
        for name, value in before.items():
            jax.config.update(name, value)


def write(results: dict, folder: str) -> None:
    """results.json and results.md into ``folder``."""
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(folder, "results.md"), "w") as f:
        f.write(table(results))


def measure(shapes, args, save) -> dict:
    """Every implementation on every shape, rounds interleaved; ``save(results)`` after each shape."""
    n = args.examples
    results = {"environment": environment(os.cpu_count()), "examples": n, "records": []}
    results["backend"] = jax.default_backend()
    for T, F, H, B in shapes:
        trainers = {
            "fit": lambda e, s=(T, F, H, n), B=B: run_fit(*s, e, batch=B),
            "fit_block1": lambda e, s=(T, F, H, n), B=B: run_fit(*s, e, batch=B, block=1),
            "fit_sharded": lambda e, s=(T, F, H, n), B=B: run_fit(*s, e, batch=B, placement="all"),
            "fit_default": lambda e, s=(T, F, H, n), B=B: run_fit(*s, e, batch=B, placement="default"),
            "fit_stream": lambda e, s=(T, F, H, n), B=B: run_fit(*s, e, batch=B, stream=True),
        }
        if "bare" in args.impls:
            trainers["bare"] = bare_loop(T, F, H, n, B)
        for name, threads in (("torch", os.cpu_count()), ("torch_1thread", 1)):
            if name in args.impls:
                trainers[name] = torch_loop(T, F, H, n, threads, B)
        trainers = {k: v for k, v in trainers.items() if k in args.impls}
        for name in ("fit", "fit_block1", "fit_sharded", "fit_default", "fit_stream"):
            if name in trainers:
                trainers[name](1)  # warm-up: compiles into the cache
        times = {k: [] for k in trainers}
        for _ in range(args.repeats):
            for name, train in trainers.items():
                times[name].append(per_update(train, n, B))
        for name, ts in times.items():
            record = {"T": T, "F": F, "H": H, "B": B, "impl": name, "per_update_s": ts}
            if name == "fit_default":
                record["devices"] = jaxrnn.Placement.for_batch(B, H, T).n_dev
            results["records"].append(record)
        print(
            f"T {T} F {F} H {H} B {B}: "
            + ", ".join(f"{k} {statistics.median(v) * 1e3:.2f} ms" for k, v in times.items())
        )
        save(results)
        jax.clear_caches()  # each fit compiles anew: a long list of shapes would exhaust the process's memory maps
    return results


def table(results: dict) -> str:
    """Markdown: median ms per update and the ratios of fit to the bare loop and to PyTorch."""
    recs = results["records"]
    impls = list(dict.fromkeys(r["impl"] for r in recs))
    shapes = list(dict.fromkeys((r["T"], r["F"], r["H"], r.get("B", BATCH)) for r in recs))
    med = {(r["T"], r["F"], r["H"], r.get("B", BATCH), r["impl"]): statistics.median(r["per_update_s"]) for r in recs}
    pairs = (
        ("fit", "bare"),
        ("fit", "torch"),
        ("fit", "torch_1thread"),
        ("fit_sharded", "torch"),
        ("fit_default", "torch"),
        ("fit", "fit_sharded"),
        ("fit", "fit_default"),
        ("torch_1thread", "torch"),
        ("fit_stream", "fit"),
        ("bare", "torch"),
    )
    ratios = [(a, b) for a, b in pairs if a in impls and b in impls]
    env = results["environment"]
    cores = {
        "fit": "1 device",
        "fit_block1": "1 device",
        "fit_stream": "1 device",
        "bare": "1 device",
        "fit_sharded": f"{len(env['devices'])} devices",
        "fit_default": "fit's default placement",
        "torch": f"{env['cores']} threads",
        "torch_1thread": "1 thread",
    }
    head = ["T, F, H, batch"] + [f"{i}, {cores[i]} (ms)" for i in impls] + [f"{a}/{b}" for a, b in ratios]
    lines = [
        f"# fit throughput on {results.get('backend', 'cpu')}: time per update, LSTM many-to-one, Adam, MSE\n",
        f"Environment: {json.dumps(results['environment'])}\n",
        f"Per update = (4 epochs - 1 epoch) / (3 x {results['examples']} examples / batch updates); "
        "median of the interleaved rounds.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for s in shapes:
        cells = [", ".join(map(str, s))] + [f"{med[(*s, i)] * 1e3:.2f}" for i in impls]
        cells += [f"{med[(*s, a)] / med[(*s, b)]:.2f}" for a, b in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
