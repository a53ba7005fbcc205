"""What the benchmarks share: timing, compiling a forward and its gradient, the record
of the environment, and the results page's header. Benchmarks import these from here,
never from one another."""

import json
import os
import platform
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import jaxlib

import jaxrnn
from jaxrnn.study.report import results_json


def timed(fn, repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn`` (which blocks until its result is ready)."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def compile_pair(forward, params, x, device):
    """Compile forward and grad-of-sum for a JAX forward(params, x) -> outputs."""
    params, x = jax.device_put((params, x), device)
    loss = lambda p, x: jnp.sum(forward(p, x))  # noqa: E731
    result = {}
    for mode, fn in (("fwd", forward), ("fwdbwd", jax.grad(loss))):
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(params, x).compile()
        compile_s = time.perf_counter() - start
        compiled(params, x)  # warm-up
        result[mode] = (compile_s, lambda c=compiled: jax.block_until_ready(c(params, x)), compiled)
    return result


SETTINGS = ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")
"""The environment variables that change what a benchmark measures, written before its command."""


def settings() -> list[str]:
    """``NAME=value`` for each of ``SETTINGS`` set in this process."""
    return [f"{name}={shlex.quote(os.environ[name])}" for name in SETTINGS if os.environ.get(name)]


def command_line() -> str:
    """The command as a user types it, ``python -m benchmarks.x ...`` after the settings
    that change its numbers: no path of the machine that ran it."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else f"python {os.path.basename(sys.argv[0])}"
    return " ".join([*settings(), program, *sys.argv[1:]])


def environment(threads: int) -> dict:
    """Versions, devices, CPU model and threads, for the record."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "jaxrnn": jaxrnn.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "devices": [str(d) for d in jax.devices()],
        "command": command_line(),
    }
    for name in ("torch", "flax", "equinox", "optax"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            env[name] = "missing"
    return env


def write_markdown(path: str, module: str, argv, header: str, text: str) -> None:
    """Write a result table under its command line, a line on the method and the environment."""
    args = sys.argv[1:] if argv is None else argv
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(
            f"Command: `{' '.join([*settings(), f'python -m benchmarks.{module}', *args])}`\n\n{header}\n\n"
            f"Environment: {json.dumps(environment(threads=os.cpu_count()))}\n\n{text}\n"
        )


def write_results(folder: str, module: str, argv, header: str, results: dict, text: str) -> None:
    """``results.json`` and ``results.md`` (``write_markdown`` of ``text``) in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w") as f:
        f.write(results_json(results) + "\n")
    write_markdown(os.path.join(folder, "results.md"), module, argv, header, text)


def torch_head(head):
    """A ``torch.nn.Linear`` holding the weights of a jaxrnn ``Head`` (linear activation)."""
    import numpy as np
    import torch

    linear = torch.nn.Linear(head.W_hy.shape[1], head.W_hy.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.asarray(head.W_hy)))
        linear.bias.copy_(torch.tensor(np.asarray(head.b_y)))
    return linear


def torch_flush_denormals() -> None:
    """Make PyTorch flush denormal floats to zero, as XLA:CPU does: the same arithmetic in
    both frameworks. Without it PyTorch's CPU LSTM at T 784 slowed from 0.21 to 1.0 s an
    update as training went on (gradients through hundreds of steps fall into the
    denormal range, which x86 computes slowly); see the real-data guide."""
    import torch

    torch.set_flush_denormal(True)


def torch_epoch(net, opt, x, y, batch: int, seed: int, loss) -> float:
    """One epoch of PyTorch updates on tensors ``x``, ``y``: batches of ``batch`` in the
    order ``numpy.random.default_rng(seed)`` draws, ``loss(net(x), y)``, the global
    gradient norm clipped at 1, ``opt.step()``. Returns its seconds."""
    import numpy as np
    import torch

    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x))).to(x.device)
    start = time.perf_counter()
    net.train()
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        opt.zero_grad()
        loss(net(x[idx]), y[idx]).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def save_figure(fig, folder: str, name: str) -> str:
    """Write ``fig`` as ``folder/name`` (110 dpi), close it, return the path."""
    import matplotlib.pyplot as plt

    path = os.path.join(folder, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
