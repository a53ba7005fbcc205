"""Layers: cells unrolled over time with ``lax.scan``; stacks and bidirectional pairs."""

from jaxrnn.layers.bidirectional import Bidirectional
from jaxrnn.layers.mask import step_mask
from jaxrnn.layers.recurrent import Recurrent, scan_cell, with_remat
from jaxrnn.layers.stacked import Stacked, make_rnn

__all__ = [
    "Bidirectional",
    "Recurrent",
    "Stacked",
    "make_rnn",
    "scan_cell",
    "step_mask",
    "with_remat",
]
