"""The forecast of parallel evaluation (``jaxrnn.parallel.predictability``): iteration
counts by causality against separate runs, the convergence law of Gonzalez et al. (2025)
on a contracting and a chaotic tanh RNN, the extrapolation rule against hand-computed
values, and ``method="auto"`` against the sequential layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key

import jaxrnn
from jaxrnn import parallel


def tanh_rnn(gain, H=8, T=64, B=2, scale=1.0):
    cell = jaxrnn.SimpleRNNCell(3, H, key=key(0), dtype=jnp.float64, W_hh_init=jaxrnn.init.gaussian(gain))
    return cell, scale * jax.random.normal(key(1), (B, T, 3), jnp.float64)


@pytest.mark.parametrize("method", ["deer", "quasi"])
def test_counts_by_length_equal_separate_runs(method):
    """One run over T = 64 gives the count of every prefix: each equals what ``unroll``
    takes on that prefix alone."""
    with jax.enable_x64(True):
        cell, xs = tanh_rnn(1.0)
        lengths = (4, 16, 64)
        got = parallel.iterations_by_length(cell, xs, lengths, method=method, max_iter=80)
        run = jax.jit(lambda x: parallel.unroll(cell, x, method=method, max_iter=80)[2].iterations)
        want = [int(run(xs[:, :k])) for k in lengths]
        assert got.tolist() == want


def test_iterations_follow_the_lyapunov_exponent():
    """Gonzalez et al. (NeurIPS 2025): a contracting cell (lambda_max < 0) needs DEER
    iterations that stop growing with T; a chaotic one (lambda_max > 0: gain 3, H 32,
    weak inputs, about +0.25 nats a step) needs of order T, here more than the budget."""
    with jax.enable_x64(True):
        lengths = (8, 32, 128)
        contracting, xs = tanh_rnn(0.5, T=128)
        lam, err = parallel.largest_lyapunov(contracting, xs)
        assert float(lam + 2 * err) < 0
        counts = parallel.iterations_by_length(contracting, xs, lengths, max_iter=200).tolist()
        assert max(counts) <= 8 and counts[-1] - counts[0] <= 1, counts
        chaotic, xs = tanh_rnn(3.0, H=32, T=128, scale=0.1)
        lam, err = parallel.largest_lyapunov(chaotic, xs)
        assert float(lam - 2 * err) > 0
        counts = parallel.iterations_by_length(chaotic, xs, lengths, max_iter=200).tolist()
        assert counts[1] >= 32 // 2 and counts[2] == 201, counts


def fc(lengths, counts, lyapunov=-0.5, method="quasi", max_iter=50, n=16):
    return parallel.Forecast(lyapunov, 0.01, method, tuple(lengths), tuple(counts), max_iter, n)


def test_predicted_iterations_extrapolate_by_the_law():
    predictable = fc((10, 100), (5, 7))
    assert parallel.predicted_iterations(predictable, 50) == 7  # within the probe: the next probed length
    assert parallel.predicted_iterations(predictable, 1000) == pytest.approx(9.0)  # + 2 per factor 10
    assert parallel.predicted_iterations(fc((10, 100), (7, 5)), 10_000) == 5  # never shrinks
    chaotic = fc((10, 100), (10, 40), lyapunov=0.2)
    assert parallel.predicted_iterations(chaotic, 1000) == pytest.approx(400.0)  # in proportion to T
    over = fc((10, 100), (10, 150), lyapunov=0.2, max_iter=200)  # round-off can make a count exceed T
    assert parallel.predicted_iterations(over, 1000) == 1000  # at most T
    assert parallel.predicted_iterations(fc((10, 100), (5, 51)), 1000) == np.inf  # the probe ran out


def test_recommend_weighs_iterations_by_the_measured_cost():
    table = parallel.ITERATION_COST["cpu"]["quasi"]
    (n, batch), cost = min(table.items(), key=lambda item: item[1])  # the cheapest measured point
    few = int(np.ceil(1 / (cost * 1.1))) - 1  # the most iterations that would still pay there
    assert parallel.iteration_cost("quasi", n, batch, "cpu") == cost
    assert parallel.iteration_cost("quasi", n + 1, batch, "cpu") == cost  # the nearest measured point
    assert parallel.recommend(fc((100,), (few,), n=n), 100, batch, backend="cpu") == "quasi"
    assert parallel.recommend(fc((100,), (few + 1,), n=n), 100, batch, backend="cpu") == "sequential"
    assert parallel.recommend(fc((100,), (1,)), 100, backend="an unmeasured one") == "sequential"


def test_auto_follows_the_forecast_and_equals_the_sequential_layer():
    with jax.enable_x64(True):
        cell, xs = tanh_rnn(0.5, T=32)
        lengths = jnp.array([32, 20])
        probe = parallel.forecast(cell, xs, method="quasi")
        assert probe.predictable and probe.lengths[-1] == 32
        assert parallel.recommend(probe, 32, backend="cpu") == "sequential"  # > 6 iterations never pay here
        want, s_want = jaxrnn.Recurrent(cell)(xs, lengths=lengths)
        for forecast in (probe, None):
            ys, s, info = parallel.unroll(cell, xs, lengths=lengths, method="auto", forecast=forecast)
            assert int(info.iterations) == 0 and bool(info.converged)
            np.testing.assert_allclose(ys, want, rtol=1e-12)
            np.testing.assert_allclose(s, s_want, rtol=1e-12)
        cheap = fc((32,), (1,), n=8)  # a forecast of one iteration: quasi-DEER pays by the CPU's costs
        ys, s, info = parallel.unroll(cell, xs, lengths=lengths, method="auto", forecast=cheap)
        assert int(info.iterations) > 0 and bool(info.converged)
        np.testing.assert_allclose(ys, want, rtol=1e-10, atol=1e-12)


def test_bad_arguments_are_named():
    with jax.enable_x64(True):
        cell, xs = tanh_rnn(1.0, T=8)
        with pytest.raises(ValueError, match="method must be one of deer, quasi, got 'elk'"):
            parallel.iterations_by_length(cell, xs, (4,), method="elk")
        with pytest.raises(ValueError, match=r"lengths must be a non-empty list of ints in \[1, T=8\], got \[4, 9\]"):
            parallel.iterations_by_length(cell, xs, (4, 9))


def test_auto_that_chooses_sequential_compiles_to_the_layers_own_program():
    """The choice is made while tracing, so "auto" costs nothing at run time: where it takes
    the sequential scan, its compiled program is the sequential layer's, op for op."""
    cell = jaxrnn.GRUCell(3, 16, key=key(0))
    xs = jax.random.normal(key(1), (4, 200, 3))
    fc = parallel.forecast(cell, xs[:, :64], method="quasi")
    assert parallel.recommend(fc, 200, 4, backend="cpu") == "sequential"
    auto = jax.jit(lambda c, x: parallel.unroll(c, x, method="auto", forecast=fc)[0]).lower(cell, xs)
    layer = jax.jit(lambda c, x: jaxrnn.Recurrent(c)(x)[0]).lower(cell, xs)

    def strip(text):  # the instructions, without their metadata (source lines, op names)
        ops = [line.split(", metadata=")[0].strip() for line in text.splitlines()]
        return [op for op in ops if op.startswith(("%", "ROOT %"))]

    program = strip(layer.compile().as_text())
    assert len(program) > 20 and strip(auto.compile().as_text()) == program
