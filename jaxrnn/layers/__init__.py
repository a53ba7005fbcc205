"""Layers: cells unrolled over time with ``lax.scan``; stacks and bidirectional pairs."""

from jaxrnn.layers.bidirectional import Bidirectional
from jaxrnn.layers.engine import Engine
from jaxrnn.layers.mask import step_mask
from jaxrnn.layers.options import SequenceOptions
from jaxrnn.layers.recurrent import Recurrent, with_engine, with_remat
from jaxrnn.layers.stacked import Stacked, make_rnn

__all__ = [
    "Bidirectional",
    "Engine",
    "Recurrent",
    "SequenceOptions",
    "Stacked",
    "make_rnn",
    "step_mask",
    "with_engine",
    "with_remat",
]
