"""Packing instead of padding (``jaxrnn.datasets.pack``): the rows hold every sequence once,
first-fit decreasing stays within its proven bound of the fewest rows possible (found
here by exhaustive search), and a model on packed rows gives the padded data's loss,
metrics, predictions and update."""

import itertools

import jax
import numpy as np
import optax
import pytest
from conftest import key

import jaxrnn
from jaxrnn.datasets import pack

N, T, F, H, C = 30, 11, 3, 6, 4


def padded_data(seed: int = 0, per_step: bool = False):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, N)
    xs = rng.normal(size=(N, T, F)).astype(np.float32)
    xs[np.arange(T)[None, :] >= lengths[:, None]] = 0
    targets = rng.integers(0, C, (N, T) if per_step else N).astype(np.int32)
    return xs, targets, lengths


def test_every_sequence_lies_once_in_the_rows_and_unpacks_to_the_padded_data():
    xs, ys, lengths = padded_data(1, per_step=True)
    packed = pack((xs, ys, lengths), row_length=17)
    R, L = packed.segments.shape
    assert L == 17 and packed.per_step
    assert packed.fill == pytest.approx(lengths.sum() / (R * L))
    np.testing.assert_array_equal(packed.unpack(packed.inputs), xs)  # every step where it came from
    real = np.arange(T) < lengths[:, None]
    np.testing.assert_array_equal(packed.unpack(packed.targets)[real], ys[real])
    for r in range(R):  # segments 0, 1, ... in order, each one sequence's steps, then -1
        ids = packed.segments[r]
        used = ids[ids >= 0]
        assert np.all(np.diff(used) >= 0) and (used[0] == 0) and np.all(ids[len(used) :] == -1)
        mine = np.flatnonzero(packed.row == r)
        np.testing.assert_array_equal(np.bincount(used), lengths[mine][np.argsort(packed.slot[mine])])


def test_targets_per_sequence_sit_at_their_segment_numbers():
    xs, y, lengths = padded_data(2)
    packed = pack((xs, y, lengths), row_length=T)
    assert not packed.per_step
    np.testing.assert_array_equal(packed.targets[packed.row, packed.slot], y)
    np.testing.assert_array_equal(packed.unpack(packed.targets), y)


def fewest_rows(lengths, capacity) -> int:
    """The fewest rows that hold every item: every assignment tried (small N only)."""
    n = len(lengths)
    for rows in range(1, n + 1):
        for assign in itertools.product(range(rows), repeat=n):
            if max(assign) == rows - 1 and all(
                sum(l for l, a in zip(lengths, assign) if a == r) <= capacity for r in range(rows)
            ):
                return rows
    return n


@pytest.mark.parametrize("seed", range(6))
def test_first_fit_decreasing_stays_within_its_bound_of_the_optimum(seed):
    """FFD <= 11/9 OPT + 6/9 (Dosa 2007); on these small cases it is usually optimal."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, 7)
    packed = pack((np.zeros((7, 10, 1), np.float32), None, lengths), row_length=10)
    used = packed.segments.shape[0]
    best = fewest_rows(list(lengths), 10)
    assert used <= 11 / 9 * best + 6 / 9
    for r in range(used):
        assert lengths[packed.row == r].sum() <= 10


def models():
    k1, k2, k3, k4 = jax.random.split(key(5), 4)
    one = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=k1, num_layers=2, bidirectional=True), jaxrnn.Head(2 * H, C, key=k2)
    )
    many = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.LSTMCell, F, H, key=k3), jaxrnn.Head(H, C, key=k4))
    return one, many


@pytest.mark.parametrize("kind", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_evaluate_and_predict_on_packed_rows_give_the_padded_results(kind, reduction):
    one, many = models()
    model = one if kind == "many_to_one" else many
    data = padded_data(3, per_step=kind == "many_to_many")
    packed = pack(data, row_length=2 * T)
    loss = jaxrnn.Loss("cross_entropy", reduction=reduction, metrics=["accuracy"])
    want = jaxrnn.evaluate(model, data, loss=loss)
    got = jaxrnn.evaluate(model, packed, loss=loss, batch_size=4)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-9)
    np.testing.assert_allclose(
        jaxrnn.predict(model, packed), jaxrnn.predict(model, data[0], lengths=data[2]), rtol=1e-5, atol=1e-6
    )


def test_loss_on_the_last_step_of_each_packed_sequence():
    _, many = models()
    data = padded_data(4, per_step=True)
    want = jaxrnn.evaluate(many, data, loss=jaxrnn.Loss("cross_entropy", on="last"))
    got = jaxrnn.evaluate(many, pack(data, row_length=T + 5), loss=jaxrnn.Loss("cross_entropy", on="last"))
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)


@pytest.mark.parametrize("kind", ["many_to_one", "many_to_many"])
def test_one_update_on_packed_rows_is_the_padded_update(kind):
    """Every example in one batch: the same loss, so the same gradient and parameters."""
    one, many = models()
    model = one if kind == "many_to_one" else many
    data = padded_data(5, per_step=kind == "many_to_many")
    packed = pack(data, row_length=2 * T)
    options = dict(loss="cross_entropy", optimizer=optax.sgd(0.5), epochs=1, key=key(0), verbose=0)
    want, h_want = jaxrnn.fit(model, jaxrnn.Batches(data, N, shuffle=False), **options)
    got, h_got = jaxrnn.fit(model, jaxrnn.Batches(packed, len(packed.inputs), shuffle=False), **options)
    assert h_got.loss[0] == pytest.approx(h_want.loss[0], rel=1e-5)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_packing_mistakes_are_named():
    xs, y, lengths = padded_data(6)
    with pytest.raises(ValueError, match=r"row_length must hold the longest sequence \(11 steps\), got 8"):
        pack((xs, y, lengths), row_length=8)
    with pytest.raises(ValueError, match=r"lengths must be 30 integers in \[1, 11\] \(an empty sequence packs"):
        pack((xs, y, np.where(np.arange(N) == 3, 0, lengths)))
    packed = pack((xs, y, lengths))
    with pytest.raises(ValueError, match="TBPTT on packed rows needs targets per step, got one per sequence"):
        jaxrnn.TBPTT(packed, 4)
    bad = packed._replace(segments=np.where(packed.segments == 1, 2, packed.segments))
    with pytest.raises(ValueError, match=r"data: segments must number each row's segments 0, 1, \.\.\. in order"):
        jaxrnn.evaluate(models()[0], bad, loss="cross_entropy")
    summed = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(jaxrnn.GRUCell, F, H, key=key(0), bidirectional=True, merge="sum"),
        jaxrnn.Head(H, C, key=key(1)),
    )
    with pytest.raises(ValueError, match="a many-to-one model on packed rows needs merge='concat'"):
        jaxrnn.predict(summed, packed)
    with pytest.raises(ValueError, match="Loss: on='last' needs targets per step"):
        jaxrnn.evaluate(models()[0], packed, loss=jaxrnn.Loss("cross_entropy", on="last"))


def test_truncated_bptt_carries_the_state_across_windows_and_restarts_it_at_each_sequence():
    """Windows of 4 steps over rows of 2T: sequences cross window edges. With a learning
    rate of 0 each window's loss is the model's on those steps; weighted by their counts
    they give the padded data's loss, computed without windows or packing."""
    _, many = models()
    data = padded_data(7, per_step=True)
    packed = pack(data, row_length=2 * T)
    k = 4
    options = dict(loss="cross_entropy", optimizer=optax.sgd(0.0), epochs=1, key=key(0), verbose=0)
    rows = jaxrnn.Batches(packed, len(packed.inputs), shuffle=False)
    _, history = jaxrnn.fit(many, jaxrnn.TBPTT(rows, k), **options)
    used = packed.segments >= 0
    counts = [used[:, w * k : (w + 1) * k].sum() for w in range(-(-2 * T // k))]
    assert len(history.loss) == len(counts)
    windowed = np.dot(history.loss, counts) / np.sum(counts)
    want = jaxrnn.evaluate(many, data, loss="cross_entropy")["loss"]
    assert windowed == pytest.approx(want, rel=1e-5)
