"""Newton's method on a whole trajectory (DEER, Lim et al. 2024; quasi-DEER, Gonzalez et al. 2024).

The trajectory ``s_t = f_t(s_{t-1})``, t = 1..T, is the root of the residual
``r_t(S) = s_t - f_t(s_{t-1})``. Linearising each step at the current guess,
``s_t ~ f_t(p_t) + A_t (s_{t-1} - p_t)``, turns one Newton step into a linear recurrence,
solved by an associative scan (``jaxrnn.parallel.linear``). With the exact Jacobians
``A_t`` (DEER) the iteration converges quadratically, and in at most T iterations in
exact arithmetic (after i of them the first i states are exact); with only their
diagonals (quasi-DEER) each iteration costs O(T n) and converges linearly to the same
trajectory. With a ``damping``, each step is ELK's damped one instead
(``jaxrnn.parallel.kalman``): slower near the solution, but it cannot blow up far from it.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxrnn.parallel.kalman import damped_step
from jaxrnn.parallel.linear import apply, linear_recurrence


class Solution(NamedTuple):
    """``states`` s_1..s_T (T, *b, n); ``iterations`` Newton steps taken; ``residual`` the
    final max |s_t - f_t(s_{t-1})| (inf where it is not finite); ``converged``: it is
    within the tolerance."""

    states: Float[Array, "T *b n"]
    iterations: Int[Array, ""]
    residual: Float[Array, ""]
    converged: Bool[Array, ""]


def shift(states: Array, s0: Array) -> Array:
    """``s_0 .. s_{T-1}``: the state each step starts from."""
    return jnp.concatenate([s0[None], states[:-1]])


def newton(
    f: Callable[[Array], Array],
    jacobian: Callable[[Array], Array],
    s0: Float[Array, "*b n"],
    T: int,
    *,
    diagonal: bool,
    tol: float,
    max_iter: int,
    damping: float | None = None,
) -> Solution:
    """Solve ``s_t = f(P)_t`` with ``P = shift(S, s0)`` by Newton iterations from ``S = s0``.

    ``f`` maps the start states (T, *b, n) of every step to their results, ``jacobian``
    to the step Jacobians (T, *b, n, n), or their diagonals (T, *b, n) when ``diagonal``.
    Stops when ``max |S - f(P)| <= tol * (1 + max |f(P)|)``, at a non-finite residual, or
    after ``max_iter`` iterations.

    ``damping`` (None: Newton's steps) takes ELK's damped steps instead, with that fixed
    Levenberg-Marquardt weight.

    Args:
        f: the start states (T, *b, n) -> the steps' results (T, *b, n).
        jacobian: the start states -> the step Jacobians (T, *b, n, n), or diagonals.
        s0: the initial state (*b, n).
        T: steps.
        diagonal: ``jacobian`` gives diagonals (the quasi methods).
        tol: the relative residual that stops.
        max_iter: the iteration budget.
        damping: ELK's weight (None: Newton).

    Returns:
        A ``Solution``: the states (T, *b, n), the iterations taken, the last residual,
            whether it converged.
    """

    def residual(S, F):
        err = jnp.max(jnp.abs(S - F))
        return jnp.where(jnp.isfinite(err), err, jnp.inf), tol * (1 + jnp.max(jnp.abs(F)))

    def body(carry):
        S, F, i = carry
        S = newton_step(S, F, jacobian(shift(S, s0)), s0, diagonal=diagonal, damping=damping)
        return S, f(shift(S, s0)), i + 1

    def keep_going(carry):
        S, F, i = carry
        err, bound = residual(S, F)
        return (i < max_iter) & (err > bound) & jnp.isfinite(err)

    S = jnp.broadcast_to(s0, (T, *s0.shape))
    S, F, i = jax.lax.while_loop(keep_going, body, (S, f(shift(S, s0)), jnp.asarray(0)))
    err, bound = residual(S, F)
    return Solution(S, i, err, err <= bound)


def newton_step(
    S: Float[Array, "T *b n"],
    F: Float[Array, "T *b n"],
    A: Array,
    s0: Float[Array, "*b n"],
    *,
    diagonal: bool,
    damping: float | None = None,
) -> Float[Array, "T *b n"]:
    """One iteration from the guess ``S``, given ``F = f(P)`` and the Jacobians ``A`` at
    ``P = shift(S, s0)``: the linearised recurrence ``s_t = F_t + A_t (s_{t-1} - p_t)``
    solved by an associative scan, or ELK's damped step toward it with weight ``damping``.
    Causal without ``damping``: the new s_1..s_k depend on S, F, A at steps 1..k only.

    Args:
        S: the guess s_1..s_T (T, *b, n).
        F: f(P) (T, *b, n).
        A: the Jacobians at P (T, *b, n, n), or diagonals (T, *b, n).
        s0: the initial state (*b, n).
        diagonal: ``A`` holds diagonals.
        damping: ELK's weight (None: Newton's step).

    Returns:
        The next guess (T, *b, n).
    """
    P = shift(S, s0)
    b = F - apply(A, P, diagonal)
    if damping is None:
        return linear_recurrence(A, b, s0, diagonal)
    return damped_step(A, b, s0, S, damping, diagonal)
