"""Data parallel fit on 4 CPU devices equals the 1-device run (run in a subprocess: the
device count is fixed when JAX starts)."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import equinox as eqx, jax, jax.numpy as jnp, numpy as np, jaxrnn
    assert jax.device_count() == 4, jax.devices()
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (40, 9, 3))
    y = jnp.cumsum(x[..., :1], axis=1) * 0.3
    lengths = jnp.asarray(np.random.default_rng(0).integers(3, 10, 40))

    def run(shard, tbptt):
        model = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.LSTMCell, 3, 16, key=key), jaxrnn.Head(16, 1, key=key))
        batches = jaxrnn.Batches((x, y, lengths), 10)
        data = batches if tbptt is None else jaxrnn.TBPTT(batches, *tbptt)
        return jaxrnn.fit(model, data, key=key, epochs=2,
                          validation=(x[:13], y[:13], lengths[:13]), verbose=False,
                          placement=jaxrnn.Placement() if shard else jaxrnn.Placement(devices=1))

    for tbptt in (None, (3, 5)):
        one, h1 = run(False, tbptt)
        four, h4 = run(True, tbptt)
        leaves = jax.tree.leaves(eqx.filter(four, eqx.is_array))
        assert all(len(a.sharding.device_set) == 4 for a in leaves)  # replicated on the 4 devices
        for a, b in zip(jax.tree.leaves(eqx.filter(one, eqx.is_array)), leaves):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)
        np.testing.assert_allclose(h1.loss, h4.loss, rtol=1e-4)
        np.testing.assert_allclose(h1.epochs[-1]["val_loss"], h4.epochs[-1]["val_loss"], rtol=1e-4)
    print("4-device run matches")
    """
)


@pytest.mark.slow
def test_four_cpu_devices_match_one():
    flags = "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"  # level 0 as the suite
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}  # the suite's 1 would win
    env.update(XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "4-device run matches" in out.stdout
