"""The Lyapunov spectrum of a trajectory by the QR method of Benettin et al. (1980)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from jaxrnn.spectra.jacobians import check_resets
from jaxrnn.spectra.products import check_jacobians, qr_signed


class Lyapunov(NamedTuple):
    """``exponents`` (n,), descending, in nats per step; ``stderr`` (n,): standard error from
    ``blocks`` batch means of the per-step log stretches; ``running`` (T', n): the
    estimate after each step past the transient (its flattening shows convergence)."""

    exponents: Float[Array, " n"]
    stderr: Float[Array, " n"]
    running: Float[Array, "T n"]


def lyapunov_spectrum(
    J: Float[Array, "T n n"],
    *,
    transient: int = 0,
    blocks: int = 10,
    num: int | None = None,
    resets: Bool[Array, " T"] | None = None,
) -> Lyapunov:
    """The Lyapunov exponents of a product of step Jacobians, by QR re-orthonormalisation:
    Q_t R_t = J_t Q_{t-1}; lambda_i = mean over t > transient of log R_t[i, i].

    The sum of all n exponents equals the mean of log|det J_t| over the averaged steps.
    With ``resets`` the stream is several segments (episodes) and the estimate pools
    them: where a step restarts, its Jacobian (zero) is skipped and Q starts again from
    the identity; the first ``transient`` steps of every segment orient Q and are not
    averaged; ``running`` and the batch means run over the averaged steps in order.

    Args:
        J: step Jacobians (T, n, n), ``J[t-1] = d s_t / d s_{t-1}`` (``step_jacobians``).
        transient: steps (of each segment) that orient Q and are not averaged.
        blocks: batch means for the standard error.
        num: compute only the largest ``num`` < n exponents (Q is n x num); None: all n.
        resets: (T,) bool, as given to ``step_jacobians``; must be concrete (not traced).

    Returns:
        A ``Lyapunov``: ``exponents`` (num,), descending, in nats per step; ``stderr``
            (num,); ``running`` (T', num), the estimate after each averaged step.
    """
    check_jacobians(J)
    T, n = J.shape[0], J.shape[1]
    num = n if num is None else num
    if not 1 <= num <= n:
        raise ValueError(f"num must lie in [1, n={n}], got {num}")
    if not 0 <= transient < T:
        raise ValueError(f"transient must lie in [0, T={T}), got {transient}")
    if blocks < 2:
        raise ValueError(f"blocks must be >= 2, got {blocks}")
    restarts = np.zeros(T, bool) if resets is None else _concrete_resets(resets, T)
    kept = np.flatnonzero(~restarts & (_steps_into_segment(restarts) >= transient))
    if kept.size == 0:
        raise ValueError(f"no segment is longer than transient + 1 = {transient + 1} steps: nothing to average")
    eye = jnp.eye(n, num, dtype=J.dtype)

    def body(Q, inputs):
        J_t, restart = inputs
        Q, R = qr_signed(J_t @ Q)
        return jnp.where(restart, eye, Q), jnp.log(jnp.maximum(jnp.diagonal(R), jnp.finfo(J.dtype).tiny))

    _, stretches = jax.lax.scan(body, eye, (J, jnp.asarray(restarts)))
    kept = stretches[kept]
    running = jnp.cumsum(kept, axis=0) / jnp.arange(1, kept.shape[0] + 1, dtype=J.dtype)[:, None]
    m = kept.shape[0] // blocks
    if m >= 1:
        means = kept[: m * blocks].reshape(blocks, m, num).mean(1)
        stderr = means.std(0, ddof=1) / jnp.sqrt(blocks)
    else:
        stderr = jnp.full(num, jnp.nan, J.dtype)
    return Lyapunov(running[-1], stderr, running)


def _concrete_resets(resets, T: int) -> np.ndarray:
    """``resets`` on the host: a bool array of shape (T,)."""
    if isinstance(resets, jax.core.Tracer):
        raise ValueError("resets must be concrete (a NumPy or JAX array outside jit): the steps averaged depend on it")
    return np.asarray(check_resets(resets, T))


def _steps_into_segment(restarts: np.ndarray) -> np.ndarray:
    """For each step, how many Jacobians of its segment's chain come before it (a
    restarted step's own Jacobian is the cut, so the step after it counts 0)."""
    count, out = 0, np.zeros(restarts.shape[0], int)
    for t, restart in enumerate(restarts):
        count = -1 if restart else count
        out[t] = count
        count += 1
    return out
