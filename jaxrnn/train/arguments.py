"""fit's arguments that need more than a count, checked before the first update; each error names the argument,
what was given and what was expected."""

import contextlib
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn.data import Data
from jaxrnn.train import checkpoint as ckpt
from jaxrnn.train.objective import Objective
from jaxrnn.train.plans import Sequences


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
    if not bool(_trial_update_is_finite(opt, params)):
        raise ValueError(
            "optimizer gives non-finite updates for zero gradients: its learning rate (or another "
            "hyperparameter) is NaN or infinite"
        )


@eqx.filter_jit
def _trial_update_is_finite(opt: optax.GradientTransformation, params):
    """Whether ``opt``'s first update of zero gradients is finite: one compiled program (run
    eagerly, its operations would compile one by one for every parameter's shape)."""
    updates, _ = opt.update(jax.tree.map(jnp.zeros_like, params), opt.init(params), params)
    finite = [jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(updates)]
    return jnp.all(jnp.stack(finite)) if finite else jnp.asarray(True)


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
    if data.segments is not None and ids.ndim == 2:
        counts = np.asarray(objective.valid(None, data.segments, ids.shape[1]))
    classes = logits.shape[-1]
    bad = counts & ((ids < 0) | (ids >= classes))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: class ids must lie in [0, {classes}) (the model has {classes} outputs), "
            f"got {ids[where]} at index {where}"
        )


def data(
    model, data: Data, name: str, sequences: Sequences, *, key=None, caller: str = "fit", trace=None
) -> jax.ShapeDtypeStruct:
    """``data`` (``name``) fits ``model`` and the objective, checked before any work and the
    same way wherever data come in (fit's data and validation, ``evaluate``).

    The objective is traced on one batch of ``sequences.rows`` examples (shapes only, no
    compute; ``trace`` traces a source's own loss too, fit's windows): a shape error is
    re-raised with ``name`` in front (with a hint when the default 'mse' meets class ids);
    class ids are then checked against the model's number of outputs (``targets``).
    ``key``: the dropout key the trace runs with (None: inference). Returns the logits'
    shape on one batch (later batches of the same shapes need only ``targets``).
    """
    idx = jax.ShapeDtypeStruct((sequences.rows,), np.int32)
    with naming(name, caller):
        jax.eval_shape(lambda m, d, i: sequences.loss(m, None, d, i, 0, key), model, data, idx)
        if trace is not None:  # after the whole data, so that an error quotes their shapes, not a window's
            trace()
        logits = jax.eval_shape(lambda m, d, i: sequences.logits(m, _gathered(d, i), key), model, data, idx)
    targets(data, name, sequences.objective, logits)
    return logits


MSE_SHAPE = "mse: targets must have the logits' shape"


@contextlib.contextmanager
def naming(name: str, caller: str):
    """Re-raise a ValueError/TypeError from tracing on ``name``'s data with the name in front."""
    try:
        yield
    except (ValueError, TypeError) as e:
        hint = ""
        if str(e).startswith(MSE_SHAPE):
            hint = (
                f" ('mse' is {caller}'s default loss: pass the loss the model is trained with, e.g. "
                "loss='cross_entropy' for class ids)"
            )
        raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{name}: {e}{hint}") from None


def _gathered(data: Data, idx) -> Data:
    return Data(*(None if a is None else a[idx] for a in data))
