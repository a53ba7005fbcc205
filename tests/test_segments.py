"""Resets inside a sequence: a row of several segments computes what each segment computes
run alone.

The oracle, drawn at random (cell, 1-2 layers, bidirectional, lengths, how dense the resets
are, what a reset returns to, the path of the layers): a packed row, run with ``resets``,
against (a) jaxrnn's plain scan (``Engine.plain()``) over a batch with one row per segment,
each from its step 0 with ``lengths`` its length, and (b) PyTorch run segment by segment
from the same weights (the cells it has). Compared: outputs, final states, and the
gradients of a loss that reads both, with respect to the parameters, the inputs and the
state given; float64 (PyTorch's parameter gradients come back through ``from_torch`` in
float32, hence its rtol 1e-5).

What a reset returns to, three ways: zeros with no state given; zeros with a state given
(the first segment starts from it, and the backward direction's last one); the state
given (``initial=state``).

The suite runs ``SUITE_DRAWS`` draws, every path twice; ``JAXRNN_SEGMENTS=N`` runs N
draws (the long profile: ``JAXRNN_SEGMENTS=200 python -m pytest tests/test_segments.py -q``).
"""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import CELL_KINDS, key, release_if_many_maps

import jaxrnn
from jaxrnn.interop import from_torch, to_torch
from jaxrnn.layers import Bidirectional, Engine, cpu_chunks, with_engine, with_remat

B, T, F, H = 3, 9, 3, 4
PATHS = ("plain", "layer", "two_cotangents", "cpu_chunks", "remat")
STARTS = ("zeros", "given", "state")
TORCH_CELLS = ("rnn", "lstm", "gru")  # the kinds PyTorch has: no layer norm, reset-after GRU
SUITE_DRAWS = 10
DRAWS = int(os.environ.get("JAXRNN_SEGMENTS", SUITE_DRAWS))


def draw(seed: int) -> dict:
    """One case; the path and the start cycle with the seed, so that few draws cover them."""
    rng = np.random.default_rng(seed)
    case = {
        "cell": str(rng.choice(list(CELL_KINDS))),
        "layers": int(rng.integers(1, 3)),
        "bidirectional": bool(rng.random() < 0.5),
        "lengths": bool(rng.random() < 0.5),
        "density": float(rng.choice([0.1, 0.3, 0.6])),
        "start": STARTS[seed % len(STARTS)],
        "path": PATHS[seed % len(PATHS)],
        "chunk": int(rng.integers(2, 4)),
    }
    if seed % 4 == 0:  # every fourth draw a cell PyTorch has, so that the suite compares with it
        case["cell"] = TORCH_CELLS[seed // 4 % len(TORCH_CELLS)]
    resets = rng.random((B, T)) < case["density"]
    resets[0, 1:3] = True  # a segment of one step
    lengths = rng.integers(1, T + 1, B) if case["lengths"] else None
    return case | {"resets": resets, "lengths_": lengths, "seed": seed}


def segments_of(resets: np.ndarray, lengths) -> list[tuple[int, int, int]]:
    """``(row, start, end)`` of every segment: a segment starts at step 0 and wherever a
    valid step has a reset; steps past a row's length belong to none."""
    out = []
    for b in range(B):
        L = T if lengths is None else int(lengths[b])
        starts = [0, *[t for t in range(1, L) if resets[b, t]]]
        out += [(b, s, e) for s, e in zip(starts, [*starts[1:], L])]
    return out


def build(case):
    cell_type, kwargs = CELL_KINDS[case["cell"]]
    k = iter(jax.random.split(key(100 + case["seed"]), 64))
    rnn = jaxrnn.make_rnn(
        cell_type, F, H, key=next(k), num_layers=case["layers"], bidirectional=case["bidirectional"], **kwargs
    )
    # every parameter random (no silent zero or one), float32 values held in float64, so that
    # PyTorch gets the same numbers
    return jax.tree.map(lambda a: (a + 0.3 * jax.random.normal(next(k), a.shape, a.dtype)).astype(jnp.float64), rnn)


def on_path(rnn, case, monkeypatch):
    path = case["path"]
    if path == "cpu_chunks":  # the CPU's chunks of about 8 MiB, made 3 steps long
        monkeypatch.setattr(cpu_chunks, "CHUNK_BYTES", 1)
        monkeypatch.setattr(cpu_chunks, "MIN_STEPS", 3)
    if path == "remat":
        return with_remat(rnn, True, chunk=case["chunk"])
    engines = {"plain": Engine.plain(), "two_cotangents": Engine(shared_cotangent=False)}
    return with_engine(rnn, engines.get(path, Engine()))


def starts_from_state(case, segs):
    """Per segment: does its forward direction start from the state given (else from what a
    reset returns to), and its backward direction?"""
    firsts = {b: min(s for r, s, _ in segs if r == b) for b in range(B)}
    lasts = {b: max(e for r, _, e in segs if r == b) for b in range(B)}
    if case["start"] == "state":
        return np.ones(len(segs), bool), np.ones(len(segs), bool)
    if case["start"] == "zeros":
        return np.zeros(len(segs), bool), np.zeros(len(segs), bool)
    fwd = np.array([s == firsts[b] and not case["resets"][b, 0] for b, s, _ in segs])
    bwd = np.array([e == lasts[b] for b, _, e in segs])
    return fwd, bwd


def per_direction(rnn, state, fn):
    """``state`` (one entry per layer) with ``fn(direction_state, backward)`` applied per direction."""
    out = []
    for layer, s in zip(rnn.layers, state):
        out.append((fn(s[0], False), fn(s[1], True)) if isinstance(layer, Bidirectional) else fn(s, False))
    return tuple(out)


def packed_run(rnn, case):
    resets, lengths = jnp.asarray(case["resets"]), case["lengths_"]

    def run(rnn, xs, state):
        given = None if case["start"] == "zeros" else state
        initial = state if case["start"] == "state" else None
        return rnn(xs, given, lengths=lengths, resets=resets, initial=initial)

    return run


def reference_run(rnn, case, segs):
    """The same function of (rnn, xs, state) by the plain scan on one row per segment."""
    rows = np.array([b for b, _, _ in segs])
    seg_len = jnp.array([e - s for _, s, e in segs])
    fwd_from, bwd_from = starts_from_state(case, segs)
    row_of, pos_of = np.zeros((B, T), int), np.zeros((B, T), int)
    for i, (b, s, e) in enumerate(segs):
        row_of[b, s:e], pos_of[b, s:e] = i, np.arange(e - s)
    valid = np.zeros((B, T), bool)
    for b, s, e in segs:
        valid[b, s:e] = True
    last = np.array([max(i for i, (r, _, _) in enumerate(segs) if r == b) for b in range(B)])
    first = np.array([min(i for i, (r, _, _) in enumerate(segs) if r == b) for b in range(B)])
    plain = with_engine(rnn, Engine.plain())

    def run(rnn, xs, state):
        xs_seg = jnp.stack([jnp.pad(xs[b, s:e], ((0, T - (e - s)), (0, 0))) for b, s, e in segs])

        def start(s, backward):
            use = jnp.asarray(bwd_from if backward else fwd_from)[:, None]
            return jax.tree.map(lambda a: jnp.where(use, a[rows], 0.0), s)

        ys, finals = with_engine(rnn, Engine.plain())(xs_seg, per_direction(plain, state, start), lengths=seg_len)
        ys = jnp.where(jnp.asarray(valid)[..., None], ys[row_of, pos_of], 0.0)
        pick = lambda s, backward: jax.tree.map(lambda a: a[first if backward else last], s)  # noqa: E731
        return ys, per_direction(plain, finals, pick)

    return run


def random_state(rnn, k):
    return jax.tree.map(lambda z: jax.random.normal(k, z.shape, jnp.float64), rnn.init_state(B))


def arrays_for(rnn, seed: int):
    """Inputs, a state, and the weights a loss puts on the outputs and the final states."""
    k1, k2, k3, k4 = jax.random.split(key(seed), 4)
    xs = jax.random.normal(k1, (B, T, F), jnp.float64)
    w_y = jax.random.normal(k3, (B, T, rnn.output_size), jnp.float64)
    return xs, random_state(rnn, k2), w_y, random_state(rnn, k4)


def loss_of(run, w_y, v):
    def loss(rnn, xs, state):
        ys, finals = run(rnn, xs, state)
        reads = sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(finals)))
        return jnp.sum(w_y * ys) + reads, (ys, finals)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))


def assert_close(a, b, rtol, atol, what):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb), what
    for i, (x, y) in enumerate(zip(la, lb)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


@pytest.mark.parametrize("seed", range(DRAWS))
def test_a_packed_row_is_its_segments_run_alone(seed, monkeypatch):
    case = draw(seed)
    segs = segments_of(case["resets"], case["lengths_"])
    with jax.enable_x64(True):
        rnn = build(case)
        xs, state, w_y, v = arrays_for(rnn, seed)
        (value, (ys, finals)), grads = loss_of(packed_run(on_path(rnn, case, monkeypatch), case), w_y, v)(
            on_path(rnn, case, monkeypatch), xs, state
        )
        (want_value, (want_ys, want_finals)), want_grads = loss_of(reference_run(rnn, case, segs), w_y, v)(
            rnn, xs, state
        )
        assert_close(ys, want_ys, 1e-9, 1e-12, "outputs")
        assert_close(finals, want_finals, 1e-9, 1e-12, "final states")
        np.testing.assert_allclose(value, want_value, rtol=1e-9)
        assert_close(eqx.filter(grads, eqx.is_array), eqx.filter(want_grads, eqx.is_array), 1e-7, 1e-10, "grads")
        if case["cell"] in TORCH_CELLS:
            assert_matches_torch(rnn, case, segs, xs, state, w_y, v, ys, finals, grads)
    release_if_many_maps()


def leaves_by_direction(tree, dirs: int) -> list[list[list]]:
    """A per-layer state tree as ``[layer][direction] -> [h]`` or ``[h, c]``: PyTorch's order."""
    return [[jax.tree.leaves(d) for d in ([s] if dirs == 1 else s)] for s in tree]


def assert_matches_torch(rnn, case, segs, xs, state, w_y, v, ys, finals, grads):
    """PyTorch, one segment at a time, from the state each segment starts from."""
    net = to_torch(rnn).double()
    dirs = 2 if case["bidirectional"] else 1
    lstm = case["cell"] == "lstm"
    fwd_from, bwd_from = starts_from_state(case, segs)
    tensor = lambda a: torch.tensor(np.asarray(a), requires_grad=True)  # noqa: E731
    given = [[[tensor(a) for a in d] for d in layer] for layer in leaves_by_direction(state, dirs)]
    x = torch.tensor(np.asarray(xs), requires_grad=True)
    out = torch.zeros((B, T, rnn.output_size), dtype=torch.float64)
    loss = 0.0
    firsts = {b: min(i for i, (r, _, _) in enumerate(segs) if r == b) for b in range(B)}
    lasts = {b: max(i for i, (r, _, _) in enumerate(segs) if r == b) for b in range(B)}
    v_leaves = leaves_by_direction(v, dirs)
    finals_t = [[None] * dirs for _ in range(case["layers"])]
    for i, (b, s, e) in enumerate(segs):
        starts = []
        for leaf in range(2 if lstm else 1):
            per = []
            for layer in range(case["layers"]):
                for d in range(dirs):
                    use = (bwd_from if d else fwd_from)[i]
                    g = given[layer][d][leaf][b]
                    per.append(g if use else torch.zeros_like(g))
            starts.append(torch.stack(per)[:, None, :])
        y, h_n = net(x[b : b + 1, s:e], tuple(starts) if lstm else starts[0])
        out[b, s:e] = y[0].detach()
        loss = loss + (torch.tensor(np.asarray(w_y[b, s:e])) * y[0]).sum()
        h_n = h_n if lstm else (h_n,)
        for layer in range(case["layers"]):
            for d in range(dirs):
                if i == (firsts[b] if d else lasts[b]):
                    vals = [n[layer * dirs + d, 0] for n in h_n]
                    finals_t[layer][d] = (finals_t[layer][d] or {}) | {b: vals}
                    for leaf, val in enumerate(vals):
                        loss = loss + (torch.tensor(np.asarray(v_leaves[layer][d][leaf][b])) * val).sum()
    loss.backward()
    np.testing.assert_allclose(ys, out.numpy(), rtol=1e-6, atol=1e-9, err_msg="outputs against PyTorch")
    for layer, per_d in enumerate(leaves_by_direction(finals, dirs)):
        for d, ours in enumerate(per_d):
            for leaf, a in enumerate(ours):
                theirs = np.stack([finals_t[layer][d][b][leaf].detach().numpy() for b in range(B)])
                np.testing.assert_allclose(a, theirs, rtol=1e-6, atol=1e-9, err_msg=f"final state {layer} {d}")
    np.testing.assert_allclose(grads[1], x.grad.numpy(), rtol=1e-6, atol=1e-9, err_msg="d inputs against PyTorch")
    if case["start"] != "zeros":
        for layer, per_d in enumerate(leaves_by_direction(grads[2], dirs)):
            for d, ours in enumerate(per_d):
                for leaf, a in enumerate(ours):
                    g = given[layer][d][leaf].grad
                    theirs = np.zeros_like(a) if g is None else g.numpy()
                    np.testing.assert_allclose(a, theirs, rtol=1e-6, atol=1e-9, err_msg=f"d state {layer} {d}")
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.grad)
    theirs = eqx.filter(from_torch(net), eqx.is_array)
    assert_close(eqx.filter(grads[0], eqx.is_array), theirs, 1e-5, 1e-6, "d parameters against PyTorch")


def test_resets_are_checked_before_any_work():
    rnn = jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(0))
    xs = jnp.zeros((B, T, F))
    with pytest.raises(ValueError, match=r"resets must be a bool array of shape \(3, 9\) \(batch, time\), got \('int"):
        rnn(xs, resets=jnp.zeros((B, T), jnp.int32))
    with pytest.raises(ValueError, match=r"resets must be a bool array of shape \(3, 9\).*\(9, 3\)"):
        rnn(xs, resets=jnp.zeros((T, B), bool))
    with pytest.raises(ValueError, match=r"initial must be a tuple of 1 per-layer states"):
        rnn(xs, resets=jnp.zeros((B, T), bool), initial=jnp.zeros((B, H)))


@pytest.mark.parametrize("method", jaxrnn.parallel.METHODS)
def test_parallel_in_time_cuts_the_chain_at_a_reset(method):
    """DEER, quasi-DEER, ELK and quasi-ELK with resets: the segments run alone, values and
    gradients (the adjoint's chain is cut at the same steps)."""
    seed = 1000 + jaxrnn.parallel.METHODS.index(method)
    case = draw(seed) | {"layers": 1, "bidirectional": False, "start": STARTS[seed % 3]}
    case["cell"] = ("lstm", "gru_ln", "rnn", "gru_before")[seed % 4]
    segs = segments_of(case["resets"], case["lengths_"])
    with jax.enable_x64(True):
        rnn = build(case)
        xs, state, w_y, v = arrays_for(rnn, seed)
        resets, lengths = jnp.asarray(case["resets"]), case["lengths_"]

        def parallel(rnn, xs, state):
            given = None if case["start"] == "zeros" else state[0]
            initial = state[0] if case["start"] == "state" else None
            ys, final, info = jaxrnn.parallel.unroll(
                rnn.layers[0].cell, xs, given, lengths=lengths, resets=resets, initial=initial, method=method
            )
            return ys, (final,)

        (value, (ys, finals)), grads = loss_of(parallel, w_y, v)(rnn, xs, state)
        (want, (want_ys, want_finals)), want_grads = loss_of(reference_run(rnn, case, segs), w_y, v)(rnn, xs, state)
        assert_close(ys, want_ys, 1e-9, 1e-11, "outputs")
        assert_close(finals, want_finals, 1e-9, 1e-11, "final states")
        assert_close(eqx.filter(grads, eqx.is_array), eqx.filter(want_grads, eqx.is_array), 1e-7, 1e-10, "grads")
