"""The Lyapunov spectrum of a trajectory by the QR method of Benettin et al. (1980)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxrnn.spectra.products import check_jacobians, qr_signed


class Lyapunov(NamedTuple):
    """``exponents`` (n,), descending, in nats per step; ``stderr`` (n,): standard error from
    ``blocks`` batch means of the per-step log stretches; ``running`` (T', n): the
    estimate after each step past the transient (its flattening shows convergence)."""

    exponents: Float[Array, " n"]
    stderr: Float[Array, " n"]
    running: Float[Array, "T n"]


def lyapunov_spectrum(
    J: Float[Array, "T n n"], *, transient: int = 0, blocks: int = 10, num: int | None = None
) -> Lyapunov:
    """Q_t R_t = J_t Q_{t-1}; lambda_i = mean over t > transient of log R_t[i, i].

    ``J[t-1] = d s_t / d s_{t-1}``. The first ``transient`` steps orient Q and are not
    averaged. The sum of all n exponents equals the mean of log|det J_t| over the
    averaged steps. ``num`` < n computes only the largest ``num`` exponents (Q is n x num).
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

    def body(Q, J_t):
        Q, R = qr_signed(J_t @ Q)
        return Q, jnp.log(jnp.maximum(jnp.diagonal(R), jnp.finfo(J.dtype).tiny))

    _, stretches = jax.lax.scan(body, jnp.eye(n, num, dtype=J.dtype), J)
    kept = stretches[transient:]
    running = jnp.cumsum(kept, axis=0) / jnp.arange(1, kept.shape[0] + 1, dtype=J.dtype)[:, None]
    m = kept.shape[0] // blocks
    if m >= 1:
        means = kept[: m * blocks].reshape(blocks, m, num).mean(1)
        stderr = means.std(0, ddof=1) / jnp.sqrt(blocks)
    else:
        stderr = jnp.full(num, jnp.nan, J.dtype)
    return Lyapunov(running[-1], stderr, running)
