"""Checkpoints: model, optimizer state, carried RNN state, PRNG key, position and history.

One ``.npz`` file (numpy's zip of arrays, no pickle): ``meta`` holds JSON (format tag,
position, history) and ``leaf_i`` the arrays of the saved trees in ``jax.tree.leaves``
order. Loading needs templates of the same structure (the model you pass to ``fit``).
Writing is atomic: the file is written beside the target, flushed to disk, then renamed
over it, so a failed save never destroys the last good checkpoint.
"""

import json
import os
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "jaxrnn-checkpoint-v1"


def save(path: str, trees, meta: dict) -> None:
    """Write ``trees`` (any pytree of arrays) and JSON ``meta`` to ``path`` atomically."""
    leaves = jax.tree.leaves(trees)
    arrays = {f"leaf_{i}": np.asarray(jax.random.key_data(a) if _is_key(a) else a) for i, a in enumerate(leaves)}
    header = json.dumps({"format": FORMAT, "n_leaves": len(leaves), **meta})
    arrays["meta"] = np.frombuffer(header.encode(), np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


def read_meta(path: str) -> dict:
    """The JSON header of a checkpoint; ValueError naming ``path`` if it is not one or is corrupt."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"checkpoint {path!r} is not a jaxrnn checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise ValueError(f"checkpoint {path!r} is not a jaxrnn checkpoint or is corrupt ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path!r} is not a jaxrnn checkpoint (format {meta.get('format')!r})")
    return meta


def _read_arrays(path: str, templates: list) -> list:
    """The first ``len(templates)`` arrays of a checkpoint, checked against the templates' shapes."""
    meta = read_meta(path)
    if meta["n_leaves"] < len(templates):
        raise ValueError(
            f"checkpoint {path!r} holds {meta['n_leaves']} arrays but the model and optimizer need "
            f"{len(templates)}: it was written for another model"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[f"leaf_{i}"] for i in range(len(templates))]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise ValueError(f"checkpoint {path!r} is corrupt ({e})") from None
    restored = []
    for i, (a, t) in enumerate(zip(arrays, templates)):
        if _is_key(t):
            restored.append(jax.random.wrap_key_data(jnp.asarray(a), impl=jax.random.key_impl(t)))
            continue
        if a.shape != np.shape(t):
            raise ValueError(
                f"checkpoint {path!r}: array {i} has shape {a.shape}, the model expects {np.shape(t)}: "
                "it was written for another model"
            )
        restored.append(jnp.asarray(a, dtype=jnp.asarray(t).dtype))
    return restored


def load(path: str, template):
    """Arrays of the checkpoint at ``path`` in the structure of ``template``, and its meta."""
    leaves, treedef = jax.tree.flatten(template)
    meta = read_meta(path)
    if meta["n_leaves"] != len(leaves):
        raise ValueError(
            f"checkpoint {path!r} holds {meta['n_leaves']} arrays but the model and optimizer have "
            f"{len(leaves)}: it was written for another model"
        )
    return jax.tree.unflatten(treedef, _read_arrays(path, leaves)), meta


def load_model(path: str, model):
    """The model saved by ``fit`` at ``path``, in the structure of ``model`` (its arrays come first)."""
    import equinox as eqx

    params, static = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    return eqx.combine(jax.tree.unflatten(treedef, _read_arrays(path, leaves)), static)
