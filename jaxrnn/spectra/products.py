"""Singular values of Jacobian products d s_t / d s_k without ever forming the raw product.

The product for lag k from a fixed t is ``P_k = J_t J_{t-1} ... J_{t-k+1}``. Its
transpose grows by a factor on the left, ``P_k^T = J_{t-k+1}^T P_{k-1}^T``, so it is
accumulated as in Benettin's method: ``P_k^T = Q_k diag(exp(l_k)) U_k`` with ``Q_k``
orthogonal, ``U_k`` upper triangular and the scales ``l_k`` kept as logarithms:

    J^T Q_{k-1} = Q_k R,   l_k[i] = max_j (log|R_ij| + l_{k-1}[j]),
    U_k = M U_{k-1},       M_ij = R_ij exp(l_{k-1}[j] - l_k[i])    (|M_ij| <= 1)

Each row is scaled by its largest entry, so M's entries are at most 1 in magnitude; where
a step's Jacobian is singular (a relu unit switched off, a gate saturated to 0 or 1
in float32) a zero on R's diagonal leaves the rest of its row to carry the scale, and a
row of zeros keeps ``l + log(tiny)`` with a zero row in U: singular values that are
exactly zero come out as -inf, never as NaN.

The log singular values are then ``max(l) + log svd(diag(exp(l - max l)) U)``: exact
wherever the product's norm over- or underflows (1e300, 1e-300 or beyond). Singular
values more than the float range below the largest of the same product (1e-38 in float32)
are at the float floor, as they would be in any floating-point SVD.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def check_jacobians(J) -> None:
    """``J`` must be a non-empty stack of square Jacobians (T, n, n)."""
    if getattr(J, "ndim", None) != 3 or J.shape[1] != J.shape[2]:
        raise ValueError(f"J must be a stack of square Jacobians (T, n, n), got shape {tuple(getattr(J, 'shape', ()))}")
    if J.shape[0] == 0:
        raise ValueError("J is empty (T = 0): there is no product to take")


def qr_signed(A):
    """QR with a non-negative diagonal of R."""
    Q, R = jnp.linalg.qr(A)
    s = jnp.where(jnp.diagonal(R) < 0, -1.0, 1.0).astype(A.dtype)
    return Q * s[None, :], R * s[:, None]


def _accumulate(Js_newest_last_first: Float[Array, "K n n"]):
    """Scan over the factors J_{t}, J_{t-1}, ... ; per lag, the scales l (K, n) and U (K, n, n)."""
    n = Js_newest_last_first.shape[-1]
    dtype = Js_newest_last_first.dtype
    log_tiny = jnp.log(jnp.finfo(dtype).tiny)

    def body(carry, J):
        Q, l, U = carry
        Q, R = qr_signed(J.T @ Q)
        # R diag(exp(l)) = diag(exp(l_new)) M, each row of M scaled by its largest entry
        # (the diagonal, unless R is singular); a zero row keeps l + log(tiny) and M's row 0
        logs = jnp.log(jnp.abs(R)) + l[None, :]  # -inf where R is 0
        l_new = jnp.maximum(jnp.max(logs, axis=1), l + log_tiny)
        U = (jnp.sign(R) * jnp.exp(logs - l_new[:, None])) @ U
        return (Q, l_new, U), (l_new, U)

    eye = jnp.eye(n, dtype=dtype)
    _, (ls, Us) = jax.lax.scan(body, (eye, jnp.zeros(n, dtype), eye), Js_newest_last_first)
    return ls, Us


def _log_svals(l: Float[Array, " n"], U: Float[Array, "n n"]) -> Float[Array, " n"]:
    top = jnp.max(l)
    s = jnp.linalg.svd(jnp.exp(l - top)[:, None] * U, compute_uv=False)
    return top + jnp.log(s)


def log_singular_values_vs_lag(
    J: Float[Array, "T n n"], t: int | None = None, max_lag: int | None = None
) -> Float[Array, "K n"]:
    """Row k-1: the log singular values (descending) of d s_t / d s_{t-k}, for lags k = 1..K.

    Args:
        J: step Jacobians (T, n, n), ``J[i-1] = d s_i / d s_{i-1}`` (``step_jacobians``).
        t: the step the products end at, in 1..T (default T).
        max_lag: K <= t (default t).

    Returns:
        (K, n).
    """
    check_jacobians(J)
    T = J.shape[0]
    t = T if t is None else t
    if not 1 <= t <= T:
        raise ValueError(f"t must lie in [1, {T}] (the trajectory length), got {t}")
    max_lag = t if max_lag is None else max_lag
    if not 1 <= max_lag <= t:
        raise ValueError(f"max_lag must lie in [1, t={t}], got {max_lag}: a lag larger than t reaches before s_0")
    factors = J[t - max_lag : t][::-1]  # J_t, J_{t-1}, ..., J_{t-max_lag+1}
    ls, Us = _accumulate(factors)
    return jax.vmap(_log_svals)(ls, Us)


def log_singular_values(J: Float[Array, "T n n"], t: int, k: int) -> Float[Array, " n"]:
    """Log singular values (descending) of the product d s_t / d s_k, 0 <= k < t <= T.

    Args:
        J: step Jacobians (T, n, n), ``J[i-1] = d s_i / d s_{i-1}`` (``step_jacobians``).
        t: the later step.
        k: the earlier step.

    Returns:
        (n,) log singular values (-inf for a zero one).
    """
    check_jacobians(J)
    if not 0 <= k < t <= J.shape[0]:
        raise ValueError(f"need 0 <= k < t <= T = {J.shape[0]}, got t={t}, k={k}")
    return log_singular_values_vs_lag(J, t, t - k)[-1]


def log_spectral_norm_vs_lag(J: Float[Array, "T n n"], t: int | None = None, max_lag: int | None = None) -> Array:
    """log ||d s_t / d s_{t-k}||_2 for k = 1..K: the first column of ``log_singular_values_vs_lag``.

    Args:
        J: step Jacobians (T, n, n).
        t: the step the products end at (default T).
        max_lag: K (default t).

    Returns:
        (K,).
    """
    return log_singular_values_vs_lag(J, t, max_lag)[:, 0]
