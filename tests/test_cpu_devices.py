"""jaxrnn's CPU device count (one device per usable core, unless the user set one or JAX
had started) and fit's default placement on it. Each case starts a process of its own:
the count is fixed when JAX starts (and the suite keeps one device, conftest.py)."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import pytest

import jaxrnn
from jaxrnn import _cpu_devices
from jaxrnn.train.devices import rows_per_device, widest_cell

DEFAULT = textwrap.dedent(
    """
    import contextlib, io, jax, jax.numpy as jnp, jaxrnn
    from jaxrnn._cpu_devices import usable_cores
    cores = usable_cores()
    assert jax.device_count() == cores, (jax.devices(), cores)
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 28, 3))
    y = x.sum(axis=(1, 2))[:, None]

    def model(hidden):
        return jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 3, hidden, key=jax.random.PRNGKey(1)),
                                jaxrnn.Head(hidden, 1, key=jax.random.PRNGKey(2)))

    # at least 1024 x 28 rows x hidden units x steps a device, and 8 rows: at T 28, H 128 -> 8 rows, H 32 -> 32
    for hidden, batch, devices in ((128, 16, min(cores, 2)), (128, 8, 1), (32, 32, 1), (32, 64, min(cores, 2))):
        shown = io.StringIO()
        with contextlib.redirect_stderr(shown):
            trained, _ = jaxrnn.fit(model(hidden), jaxrnn.Batches((x, y), batch), key=jax.random.PRNGKey(3),
                                    callbacks=[jaxrnn.callbacks.EpochPrinter()])
        assert len(trained.head.W_hy.sharding.device_set) == devices, (hidden, batch, trained.head.W_hy.sharding)
        words = "1 device" if devices == 1 else f"{devices} devices"
        assert f"from step 0 on {words}; the first block compiles" in shown.getvalue(), shown.getvalue()
    stream = jaxrnn.HostBatches([(x[:32], y[:32]), (x[32:], y[32:])])  # a stream's batches: 32 rows, H 32
    trained, _ = jaxrnn.fit(model(32), stream, key=jax.random.PRNGKey(3), epochs=2, verbose=False)
    assert len(trained.head.W_hy.sharding.device_set) == 1
    trained, _ = jaxrnn.fit(model(128), stream, key=jax.random.PRNGKey(3), epochs=2, verbose=False)
    assert len(trained.head.W_hy.sharding.device_set) == min(cores, 4)
    k = jax.random.PRNGKey(4)
    seq = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 128, key=k), jaxrnn.Head(128, 1, key=k))
    steps = jnp.cumsum(x[..., :1], axis=1)
    for data, devices in ((jaxrnn.Batches((x, steps), 16), min(cores, 2)),  # 28 steps an update: 8 rows
                          (jaxrnn.TBPTT(jaxrnn.Batches((x, steps), 16), 7), 1)):  # 7 steps: 32 rows
        trained, _ = jaxrnn.fit(seq, data, key=k, verbose=False)
        assert len(trained.head.W_hy.sharding.device_set) == devices, data
    print("devices", cores)
    """
)


def run(script: str, **env) -> str:
    """``script``'s stdout, run with this environment less the suite's device count, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    base["XLA_FLAGS"] = " ".join(f for f in base.get("XLA_FLAGS", "").split() if "device_count" not in f)
    out = subprocess.run(
        [sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_one_device_per_core_and_fit_splits_batches_where_it_pays():
    assert run(DEFAULT).split() == ["devices", str(_cpu_devices.usable_cores())]


@pytest.mark.parametrize(
    "script, env",
    [
        ("import jaxrnn, jax; print(jax.device_count())", {"JAX_NUM_CPU_DEVICES": "1"}),
        ("import jax; jax.numpy.zeros(1); import jaxrnn; print(jax.device_count())", {}),
        ("import jax; jax.config.update('jax_num_cpu_devices', 1); import jaxrnn; print(jax.device_count())", {}),
    ],
    ids=["environment", "jax-started-first", "jax-config"],
)
def test_the_users_count_or_a_started_jax_wins(script, env):
    assert run(script, **env).strip() == "1"


STARTED_FIRST = textwrap.dedent(
    """
    import warnings, jax
    x = jax.numpy.ones((16, 28, 2))  # JAX starts before jaxrnn
    import jaxrnn
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 2, 128, key=jax.random.PRNGKey(0)),
                             jaxrnn.Head(128, 1, key=jax.random.PRNGKey(1)))
    for placement in (None, jaxrnn.Placement(devices=1)):  # 16 rows of H 128: two devices would pay
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            jaxrnn.fit(model, (x, x[:, -1, :1]), key=jax.random.PRNGKey(2), verbose=False, placement=placement)
        print(sum("JAX had started before `import jaxrnn`" in str(w.message) for w in caught))
    """
)


def test_fit_says_why_a_jax_started_first_leaves_cores_idle():
    """Only where there are cores to gain and fit chooses the placement (a batch too small
    to split says nothing: tests/test_fit.py's fits run warning-free on one device)."""
    expected = ["1", "0"] if _cpu_devices.usable_cores() > 1 else ["0", "0"]
    assert run(STARTED_FIRST).split() == expected
    assert run(STARTED_FIRST, JAX_NUM_CPU_DEVICES="1").split() == ["0", "0"]  # the user's choice: nothing said


def test_forced_count_in_xla_flags_wins():
    assert (
        run(
            "import jaxrnn, jax; print(jax.device_count())", XLA_FLAGS="--xla_force_host_platform_device_count=3"
        ).strip()
        == "3"
    )


@pytest.mark.parametrize(
    "quota, cap", [("max 100000", None), ("150000 100000", 1), ("50000 100000", 1), ("800000 100000", 8)]
)
def test_usable_cores_are_the_affinity_capped_by_a_cgroup_quota(tmp_path, monkeypatch, quota, cap):
    (tmp_path / "cpu.max").write_text(quota + "\n")
    monkeypatch.setattr(_cpu_devices, "QUOTA", str(tmp_path / "cpu.max"))
    affinity = len(os.sched_getaffinity(0))
    assert _cpu_devices.usable_cores() == (affinity if cap is None else min(affinity, cap))
    monkeypatch.setattr(_cpu_devices, "QUOTA", str(tmp_path / "absent"))
    assert _cpu_devices.usable_cores() == affinity


def test_fits_default_rows_a_device_follow_the_measured_rule():
    """1024 x 28 rows x hidden units x steps a device, at least 8 rows (docs/performance.md's
    table); a model's widest cell sets its hidden size."""
    assert [rows_per_device(h, 28) for h in (None, 32, 64, 100, 128, 1024)] == [16, 32, 16, 11, 8, 8]
    assert [rows_per_device(128, t) for t in (5, 10, 100, 784)] == [45, 23, 8, 8]
    assert rows_per_device(32, 100) == 9
    k = jax.random.PRNGKey(0)
    deep = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.LSTMCell, 3, 40, num_layers=2, key=k), jaxrnn.Head(40, 1, key=k))
    mixed = jaxrnn.Stacked(
        [jaxrnn.Recurrent(jaxrnn.GRUCell(3, 24, key=k)), jaxrnn.Recurrent(jaxrnn.GRUCell(24, 72, key=k))]
    )
    assert (widest_cell(deep), widest_cell(mixed), widest_cell(eqx.nn.Linear(3, 500, key=k))) == (40, 72, None)
