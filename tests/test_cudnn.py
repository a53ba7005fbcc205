"""The cuDNN LSTM path (``jaxrnn.layers.cudnn``).

On any machine: the weights jaxrnn packs, unpacked by ``jax.experimental.rnn.unpack_lstm_weights``
and run by its pure-JAX reference ``lstm_ref`` (the equations cuDNN computes), give the
outputs, final states and gradients of jaxrnn's reference scan (``Engine.plain()``, held
to the notes' equations by tests/test_scan_paths.py); so does the whole path around the
call (reverse, lengths, zero lengths, the bidirectional pair) with ``lstm_ref`` standing
in for cuDNN. On a GPU (``python -m benchmarks.gpu`` runs this file there): the layer's
default engine compiles to cuDNN's kernels and matches the scan.
"""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key
from jax.experimental import rnn

import jaxrnn
from jaxrnn.layers import Engine, cudnn

B, T, IN, H = 4, 6, 3, 5
LENGTHS = {"full": None, "ragged": (6, 2, 0, 5)}


def reference_lstm(x, h0, c0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
    """``rnn.lstm``'s arguments, computed by ``rnn.lstm_ref`` on the unpacked weights."""
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
    args = (seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional)
    return rnn.lstm_ref(x, h0, c0, W_ih, W_hh, b_ih, b_hh, *args)


def random_lstm(k, n=1):
    """``n`` LSTM cells with every parameter random (no bias a silent zero)."""
    cells = []
    for k_i in jax.random.split(k, n):
        cell = jaxrnn.LSTMCell(IN, H, key=k_i)
        noise = dict(zip(("W_xh", "W_hh", "b_xh", "b_hh"), jax.random.split(jax.random.fold_in(k_i, 1), 4)))
        for name, k_n in noise.items():
            a = getattr(cell, name)
            cell = eqx.tree_at(lambda c, n=name: getattr(c, n), cell, a + 0.3 * jax.random.normal(k_n, a.shape))
        cells.append(cell)
    return cells


def inputs(k):
    k1, k2, k3 = jax.random.split(k, 3)
    xs = jax.random.normal(k1, (B, T, IN))
    state = (0.5 * jax.random.normal(k2, (B, H)), 0.5 * jax.random.normal(k3, (B, H)))
    w_y = jax.random.normal(jax.random.fold_in(k, 9), (B, T, 2 * H))
    return xs, state, w_y


def loss(w_y, ys, finals):
    return jnp.sum(w_y[..., : ys.shape[-1]] * ys) + sum(jnp.sum(a**2) for a in jax.tree.leaves(finals))


def assert_same_value_and_grad(ours, theirs, *args):
    (v1, g1), (v0, g0) = (jax.jit(jax.value_and_grad(f, argnums=range(len(args))))(*args) for f in (ours, theirs))
    np.testing.assert_allclose(v1, v0, rtol=2e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), g1, g0)


def test_the_packed_weights_unpack_to_jaxrnns_and_lstm_ref_is_our_lstm():
    """pack -> unpack_lstm_weights gives W_xh, W_hh, b_xh, b_hh back, for two pseudo-layers
    (a bidirectional pair); ``lstm_ref`` on them is the scan (outputs, h_n, c_n, gradients)."""
    fwd, bwd = random_lstm(key(0), 2)
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(cudnn.pack([fwd, bwd]), IN, H, 1, True)
    for d, cell in enumerate((fwd, bwd)):
        for got, want in ((W_ih[d], cell.W_xh), (W_hh[d], cell.W_hh), (b_ih[d], cell.b_xh), (b_hh[d], cell.b_hh)):
            np.testing.assert_array_equal(got, want)
    assert cudnn.pack([fwd]).shape == (rnn.get_num_params_in_lstm(IN, H, 1, False),)

    xs, s0, w_y = inputs(key(1))
    seq = jnp.full((B,), T, jnp.int32)

    def ours(cell, xs, s0):
        ys, s = jaxrnn.Recurrent(cell, engine=Engine.plain())(xs, s0)
        return loss(w_y, ys, s)

    def theirs(cell, xs, s0):
        y, h_n, c_n = reference_lstm(xs, s0[0][None], s0[1][None], cudnn.pack([cell]), seq, IN, H, 1, 0.0, False)
        return loss(w_y, y, (h_n[0], c_n[0]))

    assert_same_value_and_grad(ours, theirs, fwd, xs, s0)


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_the_cudnn_layer_path_is_the_scan(reverse, lengths):
    """``cudnn.lstm_layer`` (reverse by flipping each row's valid prefix, zero-length rows
    run for one step and undone) with ``lstm_ref`` as cuDNN: the scan's values and gradients."""
    (cell,) = random_lstm(key(2))
    xs, s0, w_y = inputs(key(3))
    lengths = None if LENGTHS[lengths] is None else jnp.array(LENGTHS[lengths])

    def ours(cell, xs, s0):
        finals, ys = cudnn.lstm_layer(cell, jnp.swapaxes(xs, 0, 1), s0, lengths, reverse=reverse, lstm=reference_lstm)
        return loss(w_y, jnp.swapaxes(ys, 0, 1), finals)

    def theirs(cell, xs, s0):
        ys, s = jaxrnn.Recurrent(cell, reverse=reverse, engine=Engine.plain())(xs, s0, lengths=lengths)
        return loss(w_y, ys, s)

    assert_same_value_and_grad(ours, theirs, cell, xs, s0)


@pytest.mark.parametrize("lengths", LENGTHS)
def test_the_cudnn_bidirectional_pair_is_two_scans(lengths):
    """``cudnn.lstm_pair``, one call with ``bidirectional=True``: the forward and the
    reverse scan's outputs and final states, and their gradients."""
    fwd, bwd = random_lstm(key(4), 2)
    xs, s0, w_y = inputs(key(5))
    s1 = jax.tree.map(lambda a: -a, s0)
    lengths = None if LENGTHS[lengths] is None else jnp.array(LENGTHS[lengths])

    def ours(fwd, bwd, xs):
        y_f, y_b, finals = cudnn.lstm_pair(fwd, bwd, xs, (s0, s1), lengths, lstm=reference_lstm)
        return loss(w_y, jnp.concatenate([y_f, y_b], -1), finals)

    def theirs(fwd, bwd, xs):
        pair = jaxrnn.Bidirectional(
            jaxrnn.Recurrent(fwd, engine=Engine.plain()), jaxrnn.Recurrent(bwd, reverse=True, engine=Engine.plain())
        )
        ys, s = pair(xs, (s0, s1), lengths=lengths)
        return loss(w_y, ys, s)

    assert_same_value_and_grad(ours, theirs, fwd, bwd, xs)


def test_the_engine_takes_cudnn_only_where_it_computes_the_scan():
    x32, x64 = jnp.zeros((2, 3, IN)), jnp.zeros((2, 3, IN), jnp.float16)
    lstm = jaxrnn.LSTMCell(IN, H, key=key(0))
    assert cudnn.takes(lstm, x32, prefix=True, remat=False)
    refused = {
        "mask": cudnn.takes(lstm, x32, prefix=False, remat=False),
        "remat": cudnn.takes(lstm, x32, prefix=True, remat=True),
        "layer norm": cudnn.takes(jaxrnn.LSTMCell(IN, H, key=key(0), layer_norm=True), x32, prefix=True, remat=False),
        "float16 inputs": cudnn.takes(lstm, x64, prefix=True, remat=False),
        "float64 cell": cudnn.takes(jax.tree.map(lambda a: a.astype(jnp.float16), lstm), x32, prefix=True, remat=False),
        "T = 0": cudnn.takes(lstm, jnp.zeros((0, 2, IN)), prefix=True, remat=False),
        "GRU": cudnn.takes(jaxrnn.GRUCell(IN, H, key=key(0)), x32, prefix=True, remat=False),
    }
    assert not any(refused.values()), refused


def test_the_gpu_branch_is_wired_in_and_a_cpu_compiles_the_scan(monkeypatch):
    """With cuDNN's RNN made traceable here (its workspace query answered, a CUDA backend
    pretended), the LSTM layer's and the bidirectional pair's gradients trace to cuDNN's
    forward and backward primitives behind a platform switch, and compiled for the CPU
    they run the scan: bit for bit what ``Engine(cudnn=False)`` gives."""
    from jax._src.lib import gpu_rnn

    monkeypatch.setattr(gpu_rnn, "compute_rnn_workspace_reserve_space_sizes", lambda *a: (0, 64), raising=False)
    monkeypatch.setattr(cudnn, "available", lambda: True)
    (cell,) = random_lstm(key(10))
    xs, _, _ = inputs(key(11))
    lengths = jnp.array(LENGTHS["ragged"])

    def layer_loss(cell, xs, engine):
        return jnp.sum(jaxrnn.Recurrent(cell, reverse=True, engine=engine)(xs, lengths=lengths)[0] ** 2)

    def pair_loss(cell, xs, engine):
        pair = jaxrnn.Bidirectional(
            jaxrnn.Recurrent(cell, engine=engine), jaxrnn.Recurrent(cell, reverse=True, engine=engine)
        )
        return jnp.sum(pair(xs, lengths=lengths)[0] ** 2)

    for loss_fn in (layer_loss, pair_loss):
        grad = jax.grad(loss_fn)
        text = str(jax.make_jaxpr(grad, static_argnums=2)(cell, xs, Engine()))
        assert "platform_index" in text and "rnn_fwd" in text and "rnn_bwd" in text, loss_fn.__name__
        assert "rnn_fwd" not in str(jax.make_jaxpr(grad, static_argnums=2)(cell, xs, Engine(cudnn=False)))
        got, want = (jax.jit(grad, static_argnums=2)(cell, xs, e) for e in (Engine(), Engine(cudnn=False)))
        jax.tree.map(np.testing.assert_array_equal, got, want)


def test_without_a_gpu_the_lstm_layer_compiles_to_the_scan():
    if cudnn.available():
        pytest.skip("this process has a CUDA backend: test_on_the_gpu_* cover it")
    layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(IN, H, key=key(0)))
    text = jax.jit(lambda m, x: m(x)[0]).lower(layer, jnp.zeros((B, T, IN))).as_text()
    assert "rnn" not in text.lower().replace("jaxrnn", "")


def cudnn_calls(hlo: str) -> list[str]:
    """The forward cuDNN RNN calls in a compiled program's text (targets cudnn_rnn*, not *_bwd*)."""
    return re.findall(r'custom_call_target="cudnn_rnn(?!_bwd)', hlo)


gpu = pytest.mark.skipif(not cudnn.available(), reason="needs a CUDA GPU: run by python -m benchmarks.gpu")


@gpu
@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_on_the_gpu_the_lstm_layer_runs_cudnn_and_matches_the_scan(reverse, lengths):
    (cell,) = random_lstm(key(6))
    xs, s0, w_y = inputs(key(7))
    lengths = None if LENGTHS[lengths] is None else jnp.array(LENGTHS[lengths])

    def run(engine):
        def f(cell, xs, s0):
            ys, s = jaxrnn.Recurrent(cell, reverse=reverse, engine=engine)(xs, s0, lengths=lengths)
            return loss(w_y, ys, s)

        return f

    hlo = jax.jit(jax.grad(run(Engine()))).lower(cell, xs, s0).compile().as_text()
    assert len(cudnn_calls(hlo)) == 1 and "cudnn_rnn_bwd" in hlo, "the layer did not take cuDNN's RNN on the GPU"
    with jax.default_matmul_precision("highest"):
        assert_same_value_and_grad(run(Engine()), run(Engine(cudnn=False)), cell, xs, s0)


@gpu
@pytest.mark.parametrize("lengths", LENGTHS)
def test_on_the_gpu_a_bidirectional_lstm_is_one_cudnn_call_and_matches_the_scan(lengths):
    fwd, bwd = random_lstm(key(8), 2)
    xs, s0, w_y = inputs(key(9))
    lengths = None if LENGTHS[lengths] is None else jnp.array(LENGTHS[lengths])

    def run(engine):
        def f(fwd, bwd, xs):
            pair = jaxrnn.Bidirectional(
                jaxrnn.Recurrent(fwd, engine=engine), jaxrnn.Recurrent(bwd, reverse=True, engine=engine)
            )
            ys, s = pair(xs, lengths=lengths)
            return loss(w_y, ys, s)

        return f

    hlo = jax.jit(run(Engine())).lower(fwd, bwd, xs).compile().as_text()
    assert len(cudnn_calls(hlo)) == 1, "not one cuDNN call for the pair"
    with jax.default_matmul_precision("highest"):
        assert_same_value_and_grad(run(Engine()), run(Engine(cudnn=False)), fwd, bwd, xs)
