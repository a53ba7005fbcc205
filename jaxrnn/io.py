"""Save and load a model with its architecture, so that ``load`` needs nothing else.

The file is a jaxrnn checkpoint (``.npz``, no pickle): the model's arrays, and in its
JSON header the architecture: for every Equinox module in the model its class (from
``jaxrnn`` or ``equinox`` only: nothing else is imported on load) and its fields,
arrays named by shape and dtype. ``load`` also reads the checkpoints that ``fit``
writes (they carry the architecture too) and returns their model.
"""

import dataclasses
import importlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.cells.base import ACTIVATIONS
from jaxrnn.cells.gru import ResetBeforeGRUCell
from jaxrnn.train import checkpoint as ckpt

_TRUSTED = ("jaxrnn.", "equinox.")


def architecture(model: eqx.Module) -> dict:
    """The JSON description of ``model``'s structure (classes, static fields, array shapes).

    TypeError naming the field for what cannot be described (a callable that is not one
    of the named activations, an object of a class from outside jaxrnn and equinox).
    """
    return _describe(model, "model")


def _describe(value, where: str):
    if isinstance(value, eqx.Module):
        cls = type(value)
        path = f"{cls.__module__}.{cls.__qualname__}"
        if not path.startswith(_TRUSTED):
            raise TypeError(
                f"{where}: only jaxrnn and equinox modules can be saved with their architecture, got {path}"
            )
        fields = {f.name: _describe(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
        return {"module": path, "fields": fields}
    if isinstance(value, jax.Array | np.ndarray):
        return {"array": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, tuple | list):
        return {type(value).__name__: [_describe(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    names = [n for n, f in ACTIVATIONS.items() if f is value]
    if names:
        return {"activation": names[0]}
    raise TypeError(f"{where}: a {type(value).__name__} cannot be saved with the architecture ({value!r})")


def build(spec: dict) -> eqx.Module:
    """A model of the architecture ``spec`` with zero arrays (``load`` fills them)."""
    return _build(spec, "model")


def _build(spec, where: str):
    if isinstance(spec, dict) and "module" in spec:
        path = spec["module"]
        module_name, _, name = path.rpartition(".")
        if not path.startswith(_TRUSTED):
            raise ValueError(f"{where}: refusing to import {path!r} (only jaxrnn and equinox classes are loaded)")
        cls = getattr(importlib.import_module(module_name), name)
        fields = dict(spec["fields"])
        if path == "jaxrnn.cells.gru.GRUCell" and fields.pop("reset_after", True) is False:
            cls = ResetBeforeGRUCell  # written before the two GRU forms became two classes
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - set(known))
        missing = sorted(n for n, f in known.items() if n not in fields and f.default is dataclasses.MISSING)
        if unknown or missing:
            raise ValueError(f"{where}: {path} in this jaxrnn has no field {unknown} and needs {missing}")
        obj = object.__new__(cls)
        for field, f in known.items():
            value = _build(fields[field], f"{where}.{field}") if field in fields else f.default
            object.__setattr__(obj, field, value)
        return obj
    if isinstance(spec, dict) and "array" in spec:
        return jnp.zeros(spec["array"], spec["dtype"])
    if isinstance(spec, dict) and ("tuple" in spec or "list" in spec):
        kind = "tuple" if "tuple" in spec else "list"
        items = [_build(v, f"{where}[{i}]") for i, v in enumerate(spec[kind])]
        return tuple(items) if kind == "tuple" else items
    if isinstance(spec, dict) and "activation" in spec:
        return ACTIVATIONS[spec["activation"]]
    return spec


def save(path: str, model: eqx.Module) -> None:
    """Write ``model`` (arrays and architecture) to ``path`` atomically.

    Args:
        path: the file to write (an existing one is replaced whole, never half-written).
        model: any jaxrnn model or layer (an Equinox module built from jaxrnn's parts).
    """
    if not isinstance(model, eqx.Module):
        raise TypeError(f"model must be an Equinox module (a jaxrnn model or layer), got {type(model).__name__}")
    ckpt.check_writable(path)
    ckpt.save(path, eqx.filter(model, eqx.is_array), {"kind": "model", "architecture": architecture(model)})


def load(path: str) -> eqx.Module:
    """The model saved at ``path`` by ``save`` or in a ``fit`` checkpoint; nothing else needed.

    Args:
        path: a file written by ``save`` or ``ModelCheckpoint``.

    Returns:
        The model, rebuilt from the architecture in the file, with its arrays.

    Raises:
        ValueError: naming the path, for a file that is not a jaxrnn checkpoint, is
            corrupt, or holds no architecture (a checkpoint of an older jaxrnn).
    """
    meta = ckpt.read_meta(path)
    spec = meta.get("architecture")
    if spec is None:
        raise ValueError(f"checkpoint {path!r} holds no architecture: load it with a template model")
    return ckpt.load_model(path, build(spec))
