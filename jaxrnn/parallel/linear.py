"""Linear recurrences ``s_t = A_t s_{t-1} + b_t`` solved in O(log T) depth by an associative scan.

Composing two steps is again a step: ``(A2, b2) after (A1, b1) = (A2 A1, A2 b1 + b2)``,
an associative operation, so ``jax.lax.associative_scan`` computes every prefix in
O(log T) parallel depth (Blelloch 1990) at O(T) combines. A dense combine costs O(n^3)
(a matrix product), a diagonal one O(n).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def apply(A: Array, s: Float[Array, "*b n"], diagonal: bool) -> Float[Array, "*b n"]:
    """``A s``: elementwise for a diagonal ``A`` (*b, n), a matrix-vector product for (*b, n, n)."""
    return A * s if diagonal else jnp.einsum("...ij,...j->...i", A, s)


def linear_recurrence(A: Array, b: Float[Array, "T *b n"], s0: Float[Array, "*b n"], diagonal: bool) -> Array:
    """``s_1 .. s_T`` (T, *b, n) of ``s_t = A_t s_{t-1} + b_t`` from ``s0``.

    ``A``: (T, *b, n, n), or (T, *b, n) holding diagonals when ``diagonal``.

    Args:
        A: (T, *b, n, n), or diagonals (T, *b, n).
        b: (T, *b, n).
        s0: (*b, n).
        diagonal: ``A`` holds diagonals.

    Returns:
        s_1..s_T (T, *b, n), by an associative scan.
    """
    b = b.at[0].add(apply(A[0], s0, diagonal))

    def combine(earlier, later):
        A1, b1 = earlier
        A2, b2 = later
        A = A2 * A1 if diagonal else A2 @ A1
        return A, apply(A2, b1, diagonal) + b2

    return jax.lax.associative_scan(combine, (A, b))[1]
