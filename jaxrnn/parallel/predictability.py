"""Whether parallel evaluation will pay, told in advance from the cell's own dynamics.

Gonzalez et al. (NeurIPS 2025, "Predictability enables parallelization") tie the
conditioning of the trajectory's Newton problem to the largest Lyapunov exponent
``lambda_max`` of the recurrence: a predictable (contracting) system, lambda_max < 0,
converges in a number of iterations that grows at most like log T, so its cost over T
steps is O((log T)^2) parallel depth; a chaotic one, lambda_max > 0, has a conditioning
that degrades like exp(-lambda_max T), and Newton needs up to T iterations (the bound
it meets in exact arithmetic: after i iterations the first i states are exact).

Two measurements make the forecast, both on the user's representative inputs:
``lambda_max`` by the QR method along the sequential trajectory
(``jaxrnn.spectra.lyapunov_spectrum``), and the iterations a probe run needs for every
prefix length at once (``iterations_by_length``: DEER and quasi-DEER are causal, so the
first k states of an iterate depend only on the first k steps, and one run at the probe
length T_p holds the iteration count of every shorter sequence). ``predicted_iterations``
extrapolates past T_p by the law: for a predictable cell the count grows like log T, at
the rate between the probe's two longest lengths; for any other in proportion to T.
"""

import json
from collections.abc import Sequence
from importlib import resources
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from jaxrnn._checks import check_sequence
from jaxrnn.cells.base import Cell, State
from jaxrnn.parallel.newton import newton_step, shift
from jaxrnn.parallel.steps import batched_jacobians, batched_steps, flattener
from jaxrnn.spectra import lyapunov_spectrum, step_jacobians

CAUSAL_METHODS = ("deer", "quasi")


def _measured_costs() -> dict[str, dict[str, dict[tuple[int, int], float]]]:
    """``iteration_cost.json`` beside this file: {backend: {method: [[n, B, cost], ...]}}."""
    table = json.loads(resources.files("jaxrnn.parallel").joinpath("iteration_cost.json").read_text())
    return {b: {m: {(n, B): c for n, B, c in rows} for m, rows in ms.items()} for b, ms in table.items()}


# One Newton iteration's time over one sequential pass, per backend, method and
# (state size n, batch B): the smallest ratio over T (the most favourable to parallel),
# written by `python -m benchmarks.parallel_in_time ... --costs jaxrnn/parallel/iteration_cost.json`
# (the CPU's from benchmarks/results/parallel_in_time_cpu_map.md, GRU, float32). A query
# takes the nearest measured (n, B) in log scale; a backend or method not listed has no
# measured costs.
ITERATION_COST = _measured_costs()
MARGIN = 1.1  # parallel must be predicted this much faster than sequential to be chosen


class Forecast(NamedTuple):
    """``lyapunov``: lambda_max (nats per step), mean over the probe sequences, and its
    ``stderr``; ``method``: the Newton variant probed; ``lengths`` and ``iterations``: the
    probe's count at each prefix length (``max_iter + 1`` where the budget ran out);
    ``n``: the cell's flat state size."""

    lyapunov: float
    stderr: float
    method: str
    lengths: tuple[int, ...]
    iterations: tuple[int, ...]
    max_iter: int
    n: int

    @property
    def predictable(self) -> bool:
        """lambda_max is below zero by more than two standard errors."""
        return self.lyapunov + 2 * self.stderr < 0


def iterations_by_length(
    cell: Cell,
    xs: Float[Array, "B T F"],
    lengths: Sequence[int],
    *,
    state: State | None = None,
    method: str = "deer",
    tol: float | None = None,
    max_iter: int = 50,
) -> Int[Array, " K"]:
    """Newton iterations ``parallel.unroll(cell, xs[:, :k], method=)`` takes, for each k in
    ``lengths``, from one run over all of ``xs``.

    Same stopping rule as ``unroll``: max |s_t - f(s_{t-1})| over the first k steps at
    most ``tol * (1 + max |f(s_{t-1})|)``. ``method`` "deer" or "quasi" (the causal ones;
    ELK's smoother looks ahead). Returns (K,) ints; ``max_iter + 1`` where the budget ran
    out or the iterates diverged.

    Args:
        cell: the cell.
        xs: the inputs (B, T, F).
        lengths: the prefix lengths k (each <= T).
        state: the initial state (None: zeros).
        method: "deer" or "quasi".
        tol: as ``unroll``'s.
        max_iter: as ``unroll``'s.

    Returns:
        (K,) iteration counts, one per length.
    """
    if method not in CAUSAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(CAUSAL_METHODS)}, got {method!r}")
    check_sequence(xs, cell.input_size)
    B, T, _ = xs.shape
    ks = np.asarray(lengths)
    if ks.ndim != 1 or ks.size == 0 or ks.min() < 1 or ks.max() > T:
        raise ValueError(f"lengths must be a non-empty list of ints in [1, T={T}], got {list(lengths)!r}")
    dtype = cell.W_hh.dtype
    tol = 100 * float(jnp.finfo(dtype).eps) if tol is None else tol
    state = cell.init_state((B,)) if state is None else state
    flat, unflat = flattener(state)
    s0 = flat(state)
    xw = cell.project(jnp.swapaxes(xs, 0, 1).astype(dtype))
    m = jnp.ones((T, B, 1), bool)
    diagonal = method == "quasi"
    at = jnp.asarray(ks - 1)

    def converged(S, F):
        err = jax.lax.cummax(jnp.max(jnp.abs(S - F), axis=(1, 2)))[at]
        big = jax.lax.cummax(jnp.max(jnp.abs(F), axis=(1, 2)))[at]
        return jnp.isfinite(err) & (err <= tol * (1 + big))

    def body(carry):
        S, i, first = carry
        P = shift(S, s0)
        F = batched_steps(cell, unflat, P, xw, m)
        first = jnp.where((first > max_iter) & converged(S, F), i, first)
        A = batched_jacobians(cell, unflat, P, xw, m, diagonal)
        return newton_step(S, F, A, s0, diagonal=diagonal), i + 1, first

    def keep_going(carry):
        _, i, first = carry
        return (i <= max_iter) & jnp.any(first > max_iter)

    S = jnp.broadcast_to(s0, (T, *s0.shape))
    first = jnp.full(ks.shape, max_iter + 1)
    return jax.lax.while_loop(keep_going, body, (S, jnp.asarray(0), first))[2]


def largest_lyapunov(
    cell: Cell, xs: Float[Array, "B T F"], *, transient: int | None = None
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """lambda_max (nats per step) of ``cell`` driven by each sequence of ``xs`` from the zero
    state, by the QR method after ``transient`` steps (default T // 10); returns the mean
    over the sequences and its standard error (from every sequence's batch means).

    Args:
        cell: the cell.
        xs: the driving inputs (B, T, F).
        transient: steps that orient the QR method and are not averaged (default T // 10).

    Returns:
        ``(mean, stderr)``: lambda_max over the sequences and its standard error.
    """
    check_sequence(xs, cell.input_size)
    T = xs.shape[1]
    transient = T // 10 if transient is None else transient
    one = jax.vmap(lambda x: lyapunov_spectrum(step_jacobians(cell, x), transient=transient, num=1))(xs)
    exponents, stderr = one.exponents[:, 0], one.stderr[:, 0]
    return exponents.mean(), jnp.sqrt(jnp.mean(stderr**2) / xs.shape[0])


def forecast(
    cell: Cell,
    xs: Float[Array, "B T F"],
    *,
    method: str = "quasi",
    lengths: Sequence[int] | None = None,
    tol: float | None = None,
    max_iter: int = 50,
) -> Forecast:
    """Probe ``cell`` on representative inputs ``xs`` (B, T_p, F): lambda_max and the
    iterations ``method`` needs at every length in ``lengths`` (default powers of 2 up to
    T_p, and T_p). Returns a ``Forecast`` for ``predicted_iterations``.

    Args:
        cell: the cell.
        xs: representative inputs (B, T_p, F).
        method: "deer" or "quasi", the method probed.
        lengths: the lengths probed (default powers of 2 up to T_p, and T_p).
        tol: as ``unroll``'s.
        max_iter: as ``unroll``'s.

    Returns:
        A ``Forecast``: lambda_max, its standard error, the method, and the iterations at
            every probed length.
    """
    T = xs.shape[1]
    if lengths is None:
        lengths = sorted({2**k for k in range(int(np.log2(max(T, 1))) + 1)} | {T})
    counts = jax.jit(iterations_by_length, static_argnames=("lengths", "method", "tol", "max_iter"))(
        cell, xs, tuple(lengths), method=method, tol=tol, max_iter=max_iter
    )
    lam, err = jax.jit(largest_lyapunov)(cell, xs)
    n = sum(leaf.shape[-1] for leaf in jax.tree.leaves(cell.init_state()))
    lengths, counts = tuple(int(k) for k in lengths), tuple(int(c) for c in counts)
    return Forecast(float(lam), float(err), method, lengths, counts, max_iter, n)


def predicted_iterations(fc: Forecast, T: int) -> float:
    """Iterations ``fc.method`` should need at length ``T`` (at most T).

    Within the probe: the probe's count at the first probed length >= T. Past it, for a
    predictable cell the law's log T growth, at the rate between the two longest probes
    (``c_K + b ln(T / k_K)``, ``b = (c_K - c_{K-1}) / ln(k_K / k_{K-1})``, b >= 0); for any
    other cell the longest probe's count grown in proportion to T. ``inf`` where the
    probe itself ran out of budget.

    Args:
        fc: a ``forecast`` probe.
        T: the sequence length.

    Returns:
        The predicted iterations (``inf`` where the probe ran out of budget).
    """
    lengths, counts = np.asarray(fc.lengths, float), np.asarray(fc.iterations, float)
    counts[counts > fc.max_iter] = np.inf
    if T <= lengths[-1]:
        return float(counts[np.searchsorted(lengths, T)])
    if not np.isfinite(counts[-1]):
        return np.inf
    if not fc.predictable:
        return float(min(T, counts[-1] * T / lengths[-1]))
    rate = 0.0
    if len(lengths) > 1:
        rate = max(0.0, (counts[-1] - counts[-2]) / np.log(lengths[-1] / lengths[-2]))
    return float(min(T, counts[-1] + rate * np.log(T / lengths[-1])))


def iteration_cost(method: str, n: int, batch: int, backend: str) -> float | None:
    """``ITERATION_COST`` at the measured (n, B) nearest to (``n``, ``batch``) in log scale;
    None where ``backend`` has no measurement of ``method``.

    Args:
        method: a Newton variant ("deer", "quasi"; the ones measured).
        n: the flat state size.
        batch: B.
        backend: "cpu", "gpu", ...

    Returns:
        One iteration's time over one sequential pass's, or None.
    """
    table = ITERATION_COST.get(backend, {}).get(method)
    if not table:
        return None
    nearest = min(table, key=lambda nb: abs(np.log(nb[0] / n)) + abs(np.log(nb[1] / batch)))
    return table[nearest]


def recommend(fc: Forecast, T: int, batch: int = 1, backend: str | None = None) -> str:
    """``fc.method`` if ``predicted_iterations(fc, T)`` times its cost per iteration
    (``iteration_cost`` for the cell's n and ``batch`` on ``backend``, default JAX's default
    backend) is below 1 / ``MARGIN`` of a sequential pass, else "sequential" (also where
    the backend's costs are not measured).

    Args:
        fc: a ``forecast`` probe.
        T: the sequence length.
        batch: B.
        backend: the backend whose measured costs to use (None: JAX's default).

    Returns:
        ``fc.method`` or "sequential".
    """
    cost = iteration_cost(fc.method, fc.n, batch, backend or jax.default_backend())
    if cost is None:
        return "sequential"
    return fc.method if predicted_iterations(fc, T) * cost * MARGIN < 1 else "sequential"
