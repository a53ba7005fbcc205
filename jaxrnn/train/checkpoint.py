"""Checkpoints: model, optimizer state, carried RNN state, PRNG key, position and history.

One ``.npz`` file (numpy's zip of arrays, no pickle): ``meta`` holds JSON (format tag,
position, history, the model's architecture) and ``leaf_i`` the arrays of the saved
trees in ``jax.tree.leaves`` order, the model's first. Resuming needs templates of the
same structure (the model you pass to ``fit``); ``jaxrnn.load`` rebuilds the model
from the architecture alone. Writing is atomic: the file is written beside the target
(``.<name>.tmp-*``), flushed to disk, then renamed over it, so a failed save never
destroys the last good checkpoint; temporary files that a killed save left behind are
removed by the next save to the same path. The file gets the permissions any file the
user creates gets (0666 less the umask), not ``mkstemp``'s private 0600.
"""

import glob
import json
import os
import tempfile
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "jaxrnn-checkpoint-v2"
READABLE = ("jaxrnn-checkpoint-v1", FORMAT)  # v1 (jaxrnn 0.1): model arrays load, resume needs v2


def _temp_prefix(path: str) -> tuple[str, str]:
    return os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-"


def check_writable(path: str) -> None:
    """OSError/ValueError now, before any work, if a checkpoint cannot be written at ``path``."""
    folder, prefix = _temp_prefix(path)
    if not os.path.isdir(folder):
        raise ValueError(f"checkpoint {path!r}: its folder does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=prefix, dir=folder)
    except OSError as e:
        raise OSError(f"checkpoint {path!r}: cannot write in its folder ({e.strerror or e})") from None
    os.close(fd)
    os.remove(probe)


def arrays_of(tree):
    """The array leaves of ``tree`` (an Equinox module or any pytree), others None."""
    return eqx.filter(tree, eqx.is_array)


def save(path: str, trees, meta: dict) -> None:
    """Write ``trees`` (any pytree of arrays) and JSON ``meta`` to ``path`` atomically."""
    leaves = jax.tree.leaves(trees)
    arrays = {f"leaf_{i}": np.asarray(jax.random.key_data(a) if _is_key(a) else a) for i, a in enumerate(leaves)}
    header = json.dumps({"format": FORMAT, "n_leaves": len(leaves), **meta})
    arrays["meta"] = np.frombuffer(header.encode(), np.uint8)
    folder, prefix = _temp_prefix(path)
    for stale in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        os.remove(stale)  # left by a save that was killed
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


def read_meta(path: str) -> dict:
    """The JSON header of a checkpoint; FileNotFoundError naming a missing ``path``,
    ValueError naming it if it is not a checkpoint or is corrupt."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"checkpoint {path!r} is not a jaxrnn checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise ValueError(f"checkpoint {path!r} is not a jaxrnn checkpoint or is corrupt ({e})") from None
    if meta.get("format") not in READABLE:
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
    if meta["format"] != FORMAT:
        raise ValueError(f"checkpoint {path!r} was written by an older jaxrnn ({meta['format']}): it cannot be resumed")
    if meta["n_leaves"] != len(leaves):
        raise ValueError(
            f"checkpoint {path!r} holds {meta['n_leaves']} arrays but the model and optimizer have "
            f"{len(leaves)}: it was written for another model"
        )
    return jax.tree.unflatten(treedef, _read_arrays(path, leaves)), meta


def load_model(path: str, model):
    """The model saved at ``path``, in the structure of ``model`` (its arrays come first)."""
    params, static = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    return eqx.combine(jax.tree.unflatten(treedef, _read_arrays(path, leaves)), static)
