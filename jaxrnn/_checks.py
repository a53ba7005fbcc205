"""Input validation shared by layers and models: clear errors at trace time, in our code."""

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def check_sequence(xs, features: int, name: str = "xs") -> None:
    """``xs`` must be a floating (batch, time, features) array with the given feature size."""
    dtype = getattr(xs, "dtype", None)
    if dtype is None:
        raise TypeError(f"{name} must be an array of shape (batch, time, {features}), got {type(xs).__name__}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {dtype}")
    if xs.ndim != 3:
        raise ValueError(
            f"{name} must have rank 3, shape (batch, time, features) = (B, T, {features}); "
            f"got rank {xs.ndim}, shape {tuple(xs.shape)}"
        )
    if xs.shape[-1] != features:
        raise ValueError(
            f"{name} has {xs.shape[-1]} features in its last axis, expected {features}; shape {tuple(xs.shape)}"
        )


def check_lengths(lengths, batch: int, time: int, name: str = "lengths"):
    """``lengths`` must be integers of shape (batch,) with 0 <= length <= time.

    Concrete values are checked now (ValueError); traced values (under ``jit``) get a
    runtime check that raises with the same message. Returns the lengths as a jax array.
    """
    dtype = getattr(lengths, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.integer):
        got = dtype if dtype is not None else type(lengths).__name__
        raise TypeError(f"{name} must be an integer array of shape ({batch},), got {got}")
    if tuple(lengths.shape) != (batch,):
        raise ValueError(
            f"{name} must have shape ({batch},) (one length per sequence in the batch), got {tuple(lengths.shape)}"
        )
    message = f"{name} must lie in [0, {time}] (the sequence length T)"
    if isinstance(lengths, jax.core.Tracer):
        return eqx.error_if(lengths, (lengths < 0) | (lengths > time), message)
    values = np.asarray(lengths)
    if values.size and (values.min() < 0 or values.max() > time):
        raise ValueError(f"{message}, got min {values.min()}, max {values.max()}")
    return jnp.asarray(lengths)


def check_state(state, expected, name: str = "state") -> None:
    """``state`` must have the tree structure, shapes and dtypes of ``expected`` (as PyTorch,
    jaxrnn casts no state: a float16 or integer state for a float32 cell is an error)."""
    layout = lambda tree: jax.tree.map(lambda a: (tuple(jnp.shape(a)), str(jnp.result_type(a))), tree)  # noqa: E731
    try:
        same = jax.tree.structure(state) == jax.tree.structure(expected) and layout(state) == layout(expected)
    except (TypeError, ValueError):
        same = False
    if not same:
        try:
            got = layout(state)
        except (TypeError, ValueError):
            got = type(state).__name__
        raise ValueError(f"{name} must have (shape, dtype) {layout(expected)}, got {got}")


def prng_key(key, name: str = "key") -> jax.Array:
    """A PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``); TypeError otherwise."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and jnp.shape(key) == ():
        return key
    if dtype == jnp.uint32 and jnp.shape(key) == (2,):
        return jnp.asarray(key)
    got = "None" if key is None else f"{type(key).__name__} {getattr(key, 'shape', '')}".strip()
    raise TypeError(f"{name} must be a PRNG key such as jax.random.key(0) or jax.random.PRNGKey(0), got {got}")


def check_count(value, name: str, low: int = 1, high: int | None = None, *, allow_none: bool = False, why: str = ""):
    """A count: a Python or NumPy integer (not a bool) in [low, high], returned as an int;
    None too when ``allow_none``. The error names ``name``, the bound and ``why`` (a reason
    in words, shown in brackets)."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_) and value >= low
    if ok and (high is None or value <= high):
        return int(value)
    bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
    extra = " or None" if allow_none else ""
    reason = f" ({why})" if why else ""
    raise ValueError(f"{name} must be an int {bound}{extra}{reason}, got {value!r}")


def check_temperature(temperature) -> float:
    """A sampling temperature: a finite number >= 0 (0 is greedy)."""
    ok = isinstance(temperature, int | float | np.number) and not isinstance(temperature, bool)
    if not ok or not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {temperature!r}")
    return float(temperature)


def resolve_named(value, table: dict, name: str):
    """``table[value]`` for a known name, a callable as it is; a clear error naming ``name`` otherwise."""
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"{name} must be one of {sorted(table)} or a callable, got {value!r}")
        return table[value]
    if not callable(value):
        raise TypeError(f"{name} must be a name or a callable, got {type(value).__name__}")
    return value


def check_file(path, name: str = "path") -> None:
    """``path`` names a file that exists: the error every reader of files gives otherwise."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name} {os.fspath(path)!r} is a folder, not a file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name} {os.fspath(path)!r} does not exist")
