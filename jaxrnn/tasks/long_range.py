"""The classic long-range benchmarks, as published (Hochreiter and Schmidhuber 1997;
Arjovsky, Shah and Bengio 2016)."""

import math

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import check_count
from jaxrnn.tasks.base import Task, split


def adding(T: int, n: int = 10_000, *, key: PRNGKeyArray, n_validation: int = 1000) -> Task:
    """The adding problem: inputs (n, T, 2), channel 0 values U[0, 1], channel 1 a marker
    with exactly one 1 in each half of the sequence; target (n, 1) the sum of the two
    marked values. Predicting 1 always scores MSE Var(X1 + X2) = 1/6.

    Args:
        T: steps per sequence (at least 2).
        n: sequences drawn, the first ``n_validation`` for validation, the rest for training.
        key: draws the values and the marked positions.
        n_validation: of the ``n``, those held out.

    Returns:
        A many-to-one MSE ``Task``: inputs (n, T, 2), targets (n, 1), output size 1,
            baseline 1/6.
    """
    check_count(T, "length", 2)
    k_v, k_a, k_b = jax.random.split(key, 3)
    values = jax.random.uniform(k_v, (n, T))
    half = T // 2
    first = jax.random.randint(k_a, (n,), 0, half)
    second = jax.random.randint(k_b, (n,), half, T)
    marker = jax.nn.one_hot(first, T) + jax.nn.one_hot(second, T)
    targets = jnp.sum(values * marker, axis=1, keepdims=True)
    train, val = split(jnp.stack([values, marker], axis=-1), targets, n_validation)
    return Task(f"adding(T={T})", train, val, "many_to_one", "mse", 1, 1 / 6, {"T": T})


BLANK, DELIMITER, N_SYMBOLS, N_COPY = 0, 9, 8, 10


def copy_memory(T: int, n: int = 10_000, *, key: PRNGKeyArray, n_validation: int = 1000) -> Task:
    """The copy memory task: 10 symbols drawn from 8 (ids 1..8), then T - 1 blanks (0), a
    delimiter (9), 10 blanks: length T + 20, inputs one-hot over 10 classes. Targets: T + 10
    blanks, then the 10 symbols. A model without memory scores at best
    10 ln 8 / (T + 20) (it knows the position, not the symbols).

    Args:
        T: the gap: blanks between the symbols and the delimiter, plus one.
        n: sequences, ``n_validation`` of them held out (the first) and the rest to train on.
        key: draws the symbols.
        n_validation: how many of the ``n`` validate.

    Returns:
        A many-to-many cross-entropy ``Task``: one-hot inputs (n, T + 20, 10), int targets
            (n, T + 20), 10 classes, baseline 10 ln 8 / (T + 20).
    """
    check_count(T, "length", 1)
    symbols = jax.random.randint(key, (n, N_COPY), 1, N_SYMBOLS + 1)
    blanks = lambda m: jnp.full((n, m), BLANK)  # noqa: E731
    seq = jnp.concatenate([symbols, blanks(T - 1), jnp.full((n, 1), DELIMITER), blanks(N_COPY)], axis=1)
    targets = jnp.concatenate([blanks(T + N_COPY), symbols], axis=1)
    inputs = jax.nn.one_hot(seq, N_SYMBOLS + 2)
    train, val = split(inputs, targets, n_validation)
    baseline = N_COPY * math.log(N_SYMBOLS) / (T + 20)
    return Task(f"copy(T={T})", train, val, "many_to_many", "cross_entropy", N_SYMBOLS + 2, baseline, {"T": T})
