"""Training, evaluating and predicting from host batches (``jaxrnn.HostBatches``): the same
run as from arrays on the device, from a list, a generator, a function, a PyTorch
DataLoader; resume; bad batches named; a data set larger than a memory limit."""

import os
import pathlib
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import key

import jaxrnn
from jaxrnn.callbacks import MaxSteps, ModelCheckpoint

ROOT = pathlib.Path(__file__).resolve().parent.parent
F, H, N, B = 3, 8, 50, 16  # 50 examples in batches of 16: the last holds 2


def data():
    x = np.asarray(jax.random.normal(key(1), (N, 10, F)))
    lengths = np.random.default_rng(0).integers(3, 11, N).astype(np.int32)
    return x, 0.3 * np.cumsum(x[..., :1], axis=1), lengths


def batches(x, y, lengths):
    return [(x[i : i + B], y[i : i + B], lengths[i : i + B]) for i in range(0, N, B)]


def model():
    return jaxrnn.ManyToMany(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(2), num_layers=2, dropout=0.2), jaxrnn.Head(H, 1, key=key(3))
    )


def params(m):
    return jax.tree.leaves(eqx.filter(m, eqx.is_array))


def fit(source, **kw):
    args = dict(key=key(4), epochs=3, steps_per_execution=3, verbose=False)
    if not isinstance(source, jaxrnn.HostBatches):
        source = jaxrnn.Batches(source, B, shuffle=False)
    return jaxrnn.fit(model(), source, **{**args, **kw})


def assert_same_run(a, b):
    (ma, ha), (mb, hb) = a, b
    assert ha.loss == hb.loss and ha.steps == hb.steps
    assert [e["loss"] for e in ha.epochs] == [e["loss"] for e in hb.epochs]
    for u, v in zip(params(ma), params(mb)):
        np.testing.assert_array_equal(u, v)


def test_host_batches_train_as_the_same_batches_on_the_device():
    """Blocks of 3 updates over epochs of 4 batches (the last of 2 examples), dropout,
    lengths: a list, a function returning an iterator and a one-shot generator (one
    epoch) give the on-device run bit for bit."""
    x, y, lengths = data()
    on_device = fit((x, y, lengths))
    assert_same_run(fit(jaxrnn.HostBatches(batches(x, y, lengths))), on_device)
    assert_same_run(fit(jaxrnn.HostBatches(lambda: iter(batches(x, y, lengths)), prefetch=1)), on_device)
    one = fit((x, y, lengths), epochs=1)
    assert_same_run(fit(jaxrnn.HostBatches(b for b in batches(x, y, lengths)), epochs=1), one)


def test_a_pytorch_dataloader_is_a_source():
    import torch

    x, y, lengths = data()
    dataset = torch.utils.data.TensorDataset(*(torch.tensor(a) for a in (x, y, lengths)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=B, shuffle=False)
    assert_same_run(fit(jaxrnn.HostBatches(loader)), fit((x, y, lengths)))


def test_resume_from_host_batches_is_bit_for_bit(tmp_path):
    x, y, lengths = data()
    source = jaxrnn.HostBatches(batches(x, y, lengths))
    path = str(tmp_path / "run.ckpt")
    full = fit(source)
    fit(source, callbacks=[ModelCheckpoint(path, every=2), MaxSteps(6)])  # stops inside epoch 2
    assert_same_run(fit(source, callbacks=[ModelCheckpoint(path, every=2, resume=True)]), full)


def test_evaluate_and_predict_read_host_batches():
    x, y, lengths = data()
    m = model()
    want = jaxrnn.evaluate(m, (x, y, lengths), batch_size=B)
    got = jaxrnn.evaluate(m, jaxrnn.HostBatches(batches(x, y, lengths)), batch_size=B)
    assert got == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(
        jaxrnn.predict(m, jaxrnn.HostBatches(batches(x, y, lengths))),
        jaxrnn.predict(m, x, lengths=lengths),
        rtol=1e-6,
    )


def test_bad_host_batches_are_named():
    x, y, lengths = data()
    good = batches(x, y, lengths)
    with pytest.raises(ValueError, match=r"data: a one-shot iterator .* not for epochs=2"):
        fit(jaxrnn.HostBatches(iter(good)), epochs=2)
    longer = good[:2] + [(np.zeros((B, 12, F), np.float32), np.zeros((B, 12, 1), np.float32), lengths[:B])]
    with pytest.raises(ValueError, match=r"data: batch 2: inputs must be like batch 0's \(\('N', 10, 3\)"):
        fit(jaxrnn.HostBatches(longer))
    with pytest.raises(ValueError, match="data: HostBatches holds no batch"):
        fit(jaxrnn.HostBatches([]))
    with pytest.raises(ValueError, match="prefetch must be an int >= 1, got 0"):
        jaxrnn.HostBatches(good, prefetch=0)
    with pytest.raises(TypeError, match="batches must be an iterable"):
        jaxrnn.HostBatches(3)
    with pytest.raises(TypeError, match="TBPTT needs the data as Batches or arrays .* got a HostBatches"):
        jaxrnn.TBPTT(jaxrnn.HostBatches(good), 4)


def test_a_data_set_larger_than_the_memory_limit_trains_from_a_generator():
    """1.5 GiB of batches made on the fly; the process's peak resident memory (VmHWM, which
    unlike getrusage's maxrss does not count the forked parent's pages) stays under 1.25
    GiB, the limit set here (measured about 0.86 GiB, of which 0.7 is JAX and the compiled
    programs): the data were never all in memory at once."""
    script = textwrap.dedent(
        """
        import jax, numpy as np
        import jaxrnn

        B, T, F, n = 256, 64, 64, 384  # 4 MiB a batch, 1.5 GiB in all
        def batches():
            for i in range(n):
                x = np.full((B, T, F), (i % 7) / 7, np.float32)
                yield x, x[:, -1, :1]

        k = jax.random.split(jax.random.PRNGKey(0), 3)
        model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, F, 4, key=k[0]), jaxrnn.Head(4, 1, key=k[1]))
        _, hist = jaxrnn.fit(model, jaxrnn.HostBatches(batches()), key=k[2], verbose=False)
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
        print(hist.steps, peak)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    steps, peak = map(int, out.stdout.split())
    assert steps == 384 and peak < 1.25 * 2**30, f"peak resident memory {peak / 2**20:.0f} MiB"
