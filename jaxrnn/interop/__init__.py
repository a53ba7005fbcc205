"""Interop with other frameworks (PyTorch: an optional dependency, imported on use)."""

from jaxrnn.interop.torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
