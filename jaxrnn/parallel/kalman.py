"""The damped Newton step of ELK (Gonzalez et al. 2024) by a parallel Kalman smoother.

DEER's step solves the linearised recurrence ``s_t = A_t s_{t-1} + b_t`` exactly; far from
the solution (a chaotic or unstable cell) that step can overshoot without bound. ELK takes
instead the Levenberg-Marquardt step

    argmin_S  sum_t ||s_t - A_t s_{t-1} - b_t||^2 + damping * sum_t ||s_t - y_t||^2

(``y`` the current iterate, ``s_0`` fixed), which is the posterior mean of a linear-Gaussian
state-space model: dynamics ``s_t = A_t s_{t-1} + b_t + q_t`` with q ~ N(0, I), and
observations ``y_t = s_t + r_t`` with r ~ N(0, I / damping). Its Kalman filter and
Rauch-Tung-Striebel smoother both run as associative scans (Särkkä and
García-Fernández 2021): the filter's elements compose by the rule in ``_combine``, and the
smoothed mean is a linear recurrence backward in time. ``damping`` -> 0 gives DEER's step;
a large ``damping`` a short step towards the linearised solution. With diagonal ``A``
(quasi-ELK) every matrix is diagonal and each operation elementwise.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxrnn.parallel.linear import linear_recurrence


class _Ops:
    """Products, transposes and solves for dense (..., n, n) or diagonal (..., n) matrices."""

    def __init__(self, diagonal: bool):
        self.diagonal = diagonal

    def mm(self, X, Y):
        return X * Y if self.diagonal else X @ Y

    def mv(self, X, v):
        return X * v if self.diagonal else jnp.einsum("...ij,...j->...i", X, v)

    def t(self, X):
        return X if self.diagonal else jnp.swapaxes(X, -1, -2)

    def eye_plus(self, X):
        return 1 + X if self.diagonal else jnp.eye(X.shape[-1], dtype=X.dtype) + X

    def solve(self, X, Y):  # X^{-1} Y, Y a matrix
        return Y / X if self.diagonal else gauss_jordan(X, Y)

    def scalar(self, c, like):  # c I shaped like the matrices
        return (
            jnp.full(like.shape, c, like.dtype)
            if self.diagonal
            else c * jnp.broadcast_to(jnp.eye(like.shape[-1], dtype=like.dtype), like.shape)
        )


def gauss_jordan(X: Float[Array, "*b n n"], Y: Float[Array, "*b n m"]) -> Float[Array, "*b n m"]:
    """``X^{-1} Y`` by Gauss-Jordan elimination with partial pivoting, in plain array ops.

    Not ``jnp.linalg.solve``: measured on this CPU (jax 0.10.2), LAPACK's batched solve
    inside the Newton ``while_loop`` deadlocks XLA:CPU's thread pool at T = 10,000 (the
    process sleeps at 0% CPU; it runs with ``--xla_cpu_multi_thread_eigen=false``, and the
    same step outside a loop runs). The matrices solved here, ``I + C J`` with C and J
    positive semi-definite, have eigenvalues >= 1.
    """
    n = X.shape[-1]
    rows = jnp.arange(n)

    def eliminate(k, aug):
        col = jnp.where(rows >= k, jnp.abs(aug[..., :, k]), -1.0)
        p = jnp.argmax(col, axis=-1)[..., None]
        perm = jnp.where(rows == k, p, jnp.where(rows == p, k, rows))
        aug = jnp.take_along_axis(aug, perm[..., None], axis=-2)  # swap rows k and p
        pivot_row = aug[..., k, :] / aug[..., k, k][..., None]
        aug = aug - aug[..., :, k][..., None] * pivot_row[..., None, :]
        return aug.at[..., k, :].set(pivot_row)

    aug = jax.lax.fori_loop(0, n, eliminate, jnp.concatenate([X, Y], axis=-1))
    return aug[..., n:]


def _combine(ops: _Ops):
    """Compose two filtering elements (A, b, C, eta, J), the earlier first."""

    def combine(earlier, later):
        A1, b1, C1, e1, J1 = earlier
        A2, b2, C2, e2, J2 = later
        M = ops.eye_plus(ops.mm(C1, J2))  # (I + C1 J2)
        N = ops.eye_plus(ops.mm(J2, C1))  # (I + J2 C1)
        A2M = ops.t(ops.solve(ops.t(M), ops.t(A2)))  # A2 M^{-1}
        A1tN = ops.t(ops.solve(ops.t(N), A1))  # A1^T N^{-1}
        A = ops.mm(A2M, A1)
        b = ops.mv(A2M, b1 + ops.mv(C1, e2)) + b2
        C = ops.mm(ops.mm(A2M, C1), ops.t(A2)) + C2
        e = ops.mv(A1tN, e2 - ops.mv(J2, b1)) + e1
        J = ops.mm(ops.mm(A1tN, J2), A1) + J1
        return A, b, C, e, J

    return combine


def damped_step(
    A: Array,
    b: Float[Array, "T *b n"],
    s0: Float[Array, "*b n"],
    y: Float[Array, "T *b n"],
    damping: float,
    diagonal: bool,
) -> Float[Array, "T *b n"]:
    """The Levenberg-Marquardt step above: the smoothed means s_1..s_T (T, *b, n).

    ``A``: (T, *b, n, n), or (T, *b, n) diagonals when ``diagonal``.

    Args:
        A: the dynamics (T, *b, n, n), or diagonals (T, *b, n).
        b: the offsets (T, *b, n).
        s0: the initial state (*b, n).
        y: the observations, f of the current guess (T, *b, n).
        damping: the Levenberg-Marquardt weight.
        diagonal: ``A`` holds diagonals.

    Returns:
        The smoothed means s_1..s_T (T, *b, n).
    """
    ops = _Ops(diagonal)
    k = damping / (1 + damping)  # the Kalman gain k I, the same at every step (H = Q = I, R = I / damping)
    innovation = y - b
    # filtering elements (Särkkä and García-Fernández 2021, with H = Q = I): the first one
    # holds the filtered mean and covariance of s_1 given the exact s_0
    A_el = (1 - k) * A
    b_el = b + k * innovation
    C_el = ops.scalar(1 - k, A)
    e_el = k * ops.mv(ops.t(A), innovation)
    J_el = k * ops.mm(ops.t(A), A)
    first = ops.mv(A[0], s0)
    A_el = A_el.at[0].set(0)
    b_el = b_el.at[0].set(b[0] + first + k * (y[0] - b[0] - first))
    e_el = e_el.at[0].set(0)
    J_el = J_el.at[0].set(0)
    _, means, covs, _, _ = jax.lax.associative_scan(_combine(ops), (A_el, b_el, C_el, e_el, J_el))
    # RTS smoother: m_t^s = E_t m_{t+1}^s + g_t, E_t = P_t A_{t+1}^T (A_{t+1} P_t A_{t+1}^T + I)^{-1}
    A_next, b_next = A[1:], b[1:]
    P = covs[:-1]
    predicted = ops.eye_plus(ops.mm(ops.mm(A_next, P), ops.t(A_next)))
    E = ops.t(ops.solve(ops.t(predicted), ops.t(ops.mm(P, ops.t(A_next)))))
    g = means[:-1] - ops.mv(E, ops.mv(A_next, means[:-1]) + b_next)
    # backward in time: reversed, the last filtered mean is the start
    E_rev = jnp.concatenate([jnp.zeros_like(E[:1]), E[::-1]])
    g_rev = jnp.concatenate([means[-1:], g[::-1]])
    smoothed = linear_recurrence(E_rev, g_rev, jnp.zeros_like(s0), diagonal)
    return smoothed[::-1]
