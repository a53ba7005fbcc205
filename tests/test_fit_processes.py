"""fit across two JAX processes (jax.distributed, gloo collectives on 127.0.0.1), each with
one CPU device and only its half of the data: the result equals that of one process with
two CPU devices and all of it (dropout included: each device draws its rows' masks from
the key and its index in the mesh, wherever the device lives), and a run interrupted and
resumed across the two processes equals the uninterrupted one."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, nproc, out, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if nproc > 1:
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
    import equinox as eqx, jax.numpy as jnp, numpy as np, jaxrnn

    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (40, 9, 3))
    y = jnp.cumsum(x[..., :1], axis=1) * 0.3
    lengths = jnp.asarray(np.random.default_rng(0).integers(3, 10, 40))
    n, v = 40 // nproc, 8 // nproc
    mine = lambda a, k: a[pid * k : (pid + 1) * k]
    data = tuple(mine(a, n) for a in (x, y, lengths))  # this process's shard only
    val = tuple(mine(a[32:], v) for a in (x, y, lengths))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    model = jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.LSTMCell, 3, 16, key=k1, num_layers=2, dropout=0.2), jaxrnn.Head(16, 1, key=k2)
    )
    # every device: fit's default would keep this small batch on one device in one process
    args = dict(key=key, epochs=3, validation=val, steps_per_execution=4, placement=jaxrnn.Placement())
    ckpt = f"{out}/run.ckpt"
    if mode == "part":
        args.update(callbacks=[jaxrnn.callbacks.ModelCheckpoint(ckpt, every=5), jaxrnn.callbacks.MaxSteps(7)])
    elif mode == "resume":
        args.update(callbacks=[jaxrnn.callbacks.ModelCheckpoint(ckpt, every=5, resume=True)])
    trained, history = jaxrnn.fit(model, jaxrnn.TBPTT(jaxrnn.Batches(data, 10), 3, 5), **args)
    assert jax.device_count() == 2 and jax.local_device_count() == 2 // nproc
    if pid == 0:
        leaves = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(trained, eqx.is_array))]
        np.savez(f"{out}/{mode}-{nproc}.npz", *leaves)
        with open(f"{out}/{mode}-{nproc}.json", "w") as f:
            json.dump(history.to_dict(), f)
    print("done", pid)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, mode: str, nproc: int) -> tuple[list[np.ndarray], dict]:
    # the runs share JAX's persistent compilation cache: they compile the same programs
    cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    # at LLVM optimisation level 0 as the suite (tests/conftest.py), and no other flag of the parent
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_optimization_level=0", **cache}
    env["JAX_NUM_CPU_DEVICES"] = str(2 // nproc)  # two devices in all
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, port, str(pid), str(nproc), str(tmp_path), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in range(nproc)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "done" in out, err[-3000:]
    with np.load(tmp_path / f"{mode}-{nproc}.npz") as z:
        leaves = [z[f"arr_{i}"] for i in range(len(z.files))]
    return leaves, json.loads((tmp_path / f"{mode}-{nproc}.json").read_text())


@pytest.mark.slow
def test_two_processes_each_with_half_the_data_train_the_one_process_model(tmp_path):
    one, h1 = run(tmp_path, "full", 1)
    two, h2 = run(tmp_path, "full", 2)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-4)
    np.testing.assert_allclose(h1["epochs"][-1]["val_loss"], h2["epochs"][-1]["val_loss"], rtol=1e-4)
    _, part = run(tmp_path, "part", 2)
    assert len(part["loss"]) == 7 and part["stop_reason"] == "max_steps"
    resumed, hr = run(tmp_path, "resume", 2)
    for a, b in zip(two, resumed):
        np.testing.assert_array_equal(a, b)
    assert hr["loss"] == h2["loss"] and hr["epochs"] == h2["epochs"]
