"""fit's arguments that need more than a count, checked before the first update; each error names the argument,
what was given and what was expected."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn.data import Data
from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train.objective import Objective


def optimizer(opt, params) -> None:
    """``opt`` must be an Optax transformation whose update of zero gradients is finite.

    The trial update finds a NaN or infinite learning rate before any training runs.
    """
    if not isinstance(opt, optax.GradientTransformation):
        hint = ""
        if callable(opt):
            hint = f" (call it: {getattr(opt, '__name__', 'it')}(learning_rate))"
        elif isinstance(opt, str):
            hint = f" (build it: optax.{opt}(learning_rate))"
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {opt!r}{hint}")
    state = opt.init(params)
    updates, _ = opt.update(jax.tree.map(jnp.zeros_like, params), state, params)
    if not all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates)):
        raise ValueError(
            "optimizer gives non-finite updates for zero gradients: its learning rate (or another "
            "hyperparameter) is NaN or infinite"
        )


def checkpoint_path(path: str | None, resume: bool) -> dict | None:
    """The checkpoint's header if ``path`` exists (it must be a resumable checkpoint and
    ``resume`` must be set), else None; the folder must exist and be writable."""
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"checkpoint must be a path, got {type(path).__name__}")
    ckpt.check_writable(path)
    if not os.path.exists(path):
        return None
    meta = ckpt.read_meta(path)  # raises if it is not a jaxrnn checkpoint or is corrupt
    if not resume:
        raise ValueError(f"checkpoint {path!r} exists: pass resume=True to continue it, or another path")
    if meta["format"] != ckpt.FORMAT:
        raise ValueError(f"checkpoint {path!r} was written by an older jaxrnn ({meta['format']}): it cannot be resumed")
    return meta


def log_path(path: str) -> None:
    """The CSV log's path: a path whose folder exists."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"CSVLogger path must be a path, got {type(path).__name__}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"CSVLogger path {path!r}: its folder does not exist")


def targets(data: Data, name: str, objective: Objective, logits: jax.ShapeDtypeStruct) -> None:
    """Class ids must be integers in [0, classes) wherever they count (positions past a
    sequence's length may hold anything, e.g. -100 padding)."""
    if not objective.class_ids:
        return
    t = data.targets
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{name}: cross_entropy targets must be integer class ids, got dtype {t.dtype}")
    ids = np.asarray(t)
    counts = np.ones(ids.shape, bool)
    if data.lengths is not None and ids.ndim == 2 and data.inputs.ndim == 3 and ids.shape[1] == data.inputs.shape[1]:
        counts = np.arange(ids.shape[1])[None, :] < np.asarray(data.lengths)[:, None]
    classes = logits.shape[-1]
    bad = counts & ((ids < 0) | (ids >= classes))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: class ids must lie in [0, {classes}) (the model has {classes} outputs), "
            f"got {ids[where]} at index {where}"
        )
