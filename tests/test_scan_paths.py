"""Every cell through every path of the layers, against autodiff of a plain ``lax.scan``
of the seed equations written out here (float64, rtol 1e-6).

The reference reads only the cell's parameter arrays; it calls no jaxrnn code. Paths: the
plain scan (any cell), the layer (CPU bias column; for a ``FusedCell`` the fused scan, its
hand-written backward and, for a ``SummedCell`` without layer norm, one stacked
cotangent; the plain scan for the others), remat
(chunked checkpoints, with and without padding to whole chunks), the CPU's chunked run,
the layer with no fast path (``Engine.plain()``), the fused backward with two cotangents,
reverse, lengths. (The GPU's cuDNN LSTM: tests/test_cudnn.py.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_KINDS, key

import jaxrnn
from jaxrnn.layers import Engine, cpu_chunks, step_mask
from jaxrnn.layers.plain_scan import plain_scan

B, T, IN, H = 3, 7, 4, 5
CELLS = CELL_KINDS
PATHS = {  # name: (how, reverse, lengths, remat chunk); the layer takes the fused scan for a FusedCell
    "plain_reverse_lengths": ("plain", True, (7, 3, 0), None),
    "layer": ("layer", False, None, None),
    "cpu_chunks_reverse_lengths": ("chunks", True, (5, 7, 1), None),  # chunks of 3 steps
    "remat": ("remat", False, None, None),  # chunks of 3: 7 steps padded to 9
    "remat_reverse_lengths": ("remat", True, (7, 3, 0), 2),
}
ENGINES = {"plain_engine": Engine.plain(), "two_cotangents": Engine(shared_cotangent=False)}


def layer_norm(a, gain, n_blocks):
    """Each gate's block of ``a`` to zero mean, unit variance (eps 1e-5), times ``gain``."""
    blocks = a.reshape(*a.shape[:-1], n_blocks, -1)
    mu = blocks.mean(-1, keepdims=True)
    var = ((blocks - mu) ** 2).mean(-1, keepdims=True)
    return ((blocks - mu) / jnp.sqrt(var + 1e-5)).reshape(a.shape) * gain


def seed_step(name, p, s, x):
    """One step of the seed equations on a batch: ``s`` the state, ``x`` (B, IN)."""
    G = p["W_hh"].shape[0] // H
    ln = p["ln_x"] is not None

    def term(W, v, gain, n=G):
        a = v @ W.T
        return layer_norm(a, gain, n) if ln else a

    h = s[0] if name.startswith("lstm") else s
    ax = term(p["W_xh"], x, p["ln_x"]) + p["b_xh"]
    if name.startswith("rnn"):
        f = jax.nn.relu if "relu" in name else jnp.tanh
        return f(ax + term(p["W_hh"], h, p["ln_h"]) + p["b_hh"])
    if name.startswith("lstm"):
        a = ax + term(p["W_hh"], h, p["ln_h"]) + p["b_hh"]
        i, f, g, o = (a[:, k * H : (k + 1) * H] for k in range(4))
        c = jax.nn.sigmoid(f) * s[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
        c_out = layer_norm(c, p["ln_c"], 1) + p["ln_c_shift"] if ln else c
        return jax.nn.sigmoid(o) * jnp.tanh(c_out), c
    x_r, x_z, x_n = ax[:, :H], ax[:, H : 2 * H], ax[:, 2 * H :]
    gain = (lambda lo, hi: p["ln_h"][lo:hi]) if ln else (lambda lo, hi: None)
    if name.startswith("gru_before"):
        ah = term(p["W_hh"][: 2 * H], h, gain(0, 2 * H), 2) + p["b_hh"][: 2 * H]
        r, z = jax.nn.sigmoid(x_r + ah[:, :H]), jax.nn.sigmoid(x_z + ah[:, H:])
        n = jnp.tanh(x_n + term(p["W_hh"][2 * H :], r * h, gain(2 * H, 3 * H), 1) + p["b_hh"][2 * H :])
    else:
        ah = term(p["W_hh"], h, p["ln_h"]) + p["b_hh"]
        r, z = jax.nn.sigmoid(x_r + ah[:, :H]), jax.nn.sigmoid(x_z + ah[:, H : 2 * H])
        n = jnp.tanh(x_n + r * ah[:, 2 * H :])
    return (1 - z) * h + z * n


def reference(name, p, xs, s0, valid, reverse):
    """Plain ``lax.scan`` of ``seed_step``; skipped steps keep the state and emit zeros."""
    out = (lambda s: s[0]) if name.startswith("lstm") else (lambda s: s)

    def body(s, inputs):
        x_t, m_t = inputs
        new = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), seed_step(name, p, s, x_t), s)
        return new, jnp.where(m_t, out(new), 0)

    s, ys = jax.lax.scan(body, s0, (jnp.swapaxes(xs, 0, 1), valid), reverse=reverse)
    return jnp.swapaxes(ys, 0, 1), s


def run_path(path, cell, xs, s0, lengths):
    how, reverse, _, chunk = PATHS.get(path, (path, False, None, None))
    if how in ("layer", "chunks", "remat", *ENGINES):
        layer = jaxrnn.Recurrent(
            cell,
            reverse=reverse,
            remat=how == "remat",
            chunk=chunk or (3 if how == "remat" else None),
            engine=ENGINES.get(how, Engine()),
        )
        return layer(xs, s0, lengths=lengths)
    valid = step_mask(B, T, lengths, None)
    s, ys = plain_scan(cell, cell.project(jnp.swapaxes(xs, 0, 1)), s0, valid, reverse=reverse)
    return jnp.swapaxes(ys, 0, 1), s


READS = {  # what a loss reads of (w_y, ys, final state); a part it does not read has a zero cotangent
    "outputs_and_state": lambda w_y, ys, s: jnp.sum(w_y * ys) + jnp.sum(jnp.stack(jax.tree.leaves(s)) ** 2),
    "final_h": lambda w_y, ys, s: jnp.sum(w_y[:, 0] * jax.tree.leaves(s)[0]),  # many-to-one: h_T only
    "outputs": lambda w_y, ys, s: jnp.sum(w_y * ys),  # sequence labelling: no final state
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", CELLS)
def test_every_path_equals_autodiff_of_the_seed_equations(name, path, monkeypatch):
    assert_path_matches_reference(name, path, READS["outputs_and_state"], monkeypatch)


@pytest.mark.parametrize("reads", ["final_h", "outputs"])
@pytest.mark.parametrize("name", ["lstm", "gru", "lstm_ln"])
def test_the_fused_backward_with_zero_output_or_state_cotangents(name, reads, monkeypatch):
    """The fused scan's backward is told which cotangents are symbolic zeros (a many-to-one
    model never reads the outputs, a labeller never the final state)."""
    assert_path_matches_reference(name, "layer", READS[reads], monkeypatch)


@pytest.mark.parametrize("name", ["lstm_ln", "gru_before"])
def test_the_layer_with_no_fast_path(name, monkeypatch):
    """``Engine.plain()``: the layer is plain_scan (whose every cell the plain path above
    covers) without the bias column, chunks or fused backward; reverse and lengths."""
    PATHS_PLAIN = ("plain_engine", True, (7, 3, 0), None)
    monkeypatch.setitem(PATHS, "plain_engine_reverse_lengths", PATHS_PLAIN)
    assert_path_matches_reference(name, "plain_engine_reverse_lengths", READS["outputs_and_state"], monkeypatch)


@pytest.mark.parametrize("name", ["lstm", "rnn"])
def test_the_fused_backward_with_two_cotangents(name, monkeypatch):
    """``Engine(shared_cotangent=False)``: a summed cell's backward stacks d(xw) and d(hw) apart."""
    assert_path_matches_reference(name, "two_cotangents", READS["outputs_and_state"], monkeypatch)


def assert_path_matches_reference(name, path, read, monkeypatch):
    how, reverse, lengths, _ = PATHS.get(path, (path, False, None, None))
    cls, kwargs = CELLS[name]
    if how == "chunks":  # the CPU's chunks of about 8 MiB, made 3 steps long
        monkeypatch.setattr(cpu_chunks, "CHUNK_BYTES", 1)
        monkeypatch.setattr(cpu_chunks, "MIN_STEPS", 3)
    with jax.enable_x64(True):
        k = iter(jax.random.split(key(3), 32))
        cell = cls(IN, H, key=next(k), dtype=jnp.float64, **kwargs)
        # every parameter random, so that no term of the equations is a silent zero or one
        cell = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(next(k), a.shape, a.dtype), cell)
        xs = jax.random.normal(next(k), (B, T, IN), jnp.float64)
        s0 = jax.tree.map(lambda z: 0.5 * jax.random.normal(next(k), z.shape, z.dtype), cell.init_state((B,)))
        w_y = jax.random.normal(next(k), (B, T, H), jnp.float64)
        lengths = None if lengths is None else jnp.array(lengths)
        valid = step_mask(B, T, lengths, None)
        valid = jnp.ones((T, B, 1), bool) if valid is None else valid

        def loss(ys, s):
            return read(w_y, ys, s)

        def ours(cell, xs, s0):
            return loss(*run_path(path, cell, xs, s0, lengths))

        def theirs(p, xs, s0):
            return loss(*reference(name, p, xs, s0, valid, reverse))

        fields = ("W_xh", "W_hh", "b_xh", "b_hh", "ln_x", "ln_h", "ln_c", "ln_c_shift")
        params = {f: getattr(cell, f) for f in fields if hasattr(cell, f)}
        v1, (g_cell, g_xs, g_s0) = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2)))(cell, xs, s0)
        v0, (g_p, g_xs0, g_s00) = jax.jit(jax.value_and_grad(theirs, argnums=(0, 1, 2)))(params, xs, s0)
        np.testing.assert_allclose(v1, v0, rtol=1e-6)
        for f, g in g_p.items():
            if g is not None:
                np.testing.assert_allclose(getattr(g_cell, f), g, rtol=1e-6, atol=1e-12, err_msg=f)
        np.testing.assert_allclose(g_xs, g_xs0, rtol=1e-6, atol=1e-12)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12), g_s0, g_s00)


def test_a_fused_cell_cannot_redefine_its_step():
    """What a cell defines decides its path: a FusedCell's step is fixed, a SummedCell's gates too."""
    with pytest.raises(TypeError, match="define gates"):

        class Lying(jaxrnn.cells.FusedCell):
            def step(self, state, xw):
                return state

    with pytest.raises(TypeError, match="define activate"):

        class AlsoLying(jaxrnn.cells.SummedCell):
            def gates(self, state, xw, hw):
                return state


def test_remat_temporary_memory_grows_as_the_square_root_of_T():
    """XLA's buffer analysis of the compiled gradient (compiled, not run), at T and 16 T:
    the checkpointed path's temporaries grow about 4x (sqrt(16); boundary states and one
    chunk's work, no copy of the whole input), the plain path's about 16x (everything
    per step is kept for the backward pass)."""
    B, F, H = 8, 64, 32

    def temp(T: int, remat: bool) -> int:
        layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(F, H, key=key(0)), remat=remat)
        grad = jax.jit(jax.grad(lambda m, x: jnp.sum(m(x)[0])))
        compiled = grad.lower(layer, jax.ShapeDtypeStruct((B, T, F), jnp.float32)).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    remat = temp(16384, True) / temp(1024, True)
    plain = temp(16384, False) / temp(1024, False)
    assert 2 < remat < 6 and plain > 10, (remat, plain)
