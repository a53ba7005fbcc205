"""jaxrnn: simple RNN, LSTM and GRU the functional way, in JAX.

Cells are pure step functions; layers unroll them with ``lax.scan``; BPTT is ``jax.grad``
through the scan. Arrays are batch-major: inputs (B, T, F), outputs (B, T, H).
"""

import jaxrnn._cpu_devices  # noqa: F401  first: one CPU device per core, before anything starts JAX
from jaxrnn import callbacks, data, datasets, parallel, spectra, tasks
from jaxrnn.cells import Cell, GRUCell, LSTMCell, ResetBeforeGRUCell, SimpleRNNCell, chrono_init, init
from jaxrnn.data import TBPTT, Batches, Data, HostBatches, streams
from jaxrnn.interop import from_torch, to_torch
from jaxrnn.io import load, save
from jaxrnn.layers import Bidirectional, Recurrent, Stacked, make_rnn
from jaxrnn.models import Decoder, EncoderDecoder, Head, ManyToMany, ManyToOne, OneToMany
from jaxrnn.train import (
    History,
    Loss,
    MissingLengthsWarning,
    Placement,
    default_optimizer,
    evaluate,
    fit,
    predict,
)

__version__ = "0.1.0"

__all__ = [
    "Batches",
    "Bidirectional",
    "Cell",
    "Data",
    "Decoder",
    "EncoderDecoder",
    "GRUCell",
    "History",
    "HostBatches",
    "Loss",
    "MissingLengthsWarning",
    "Placement",
    "TBPTT",
    "Head",
    "LSTMCell",
    "ManyToMany",
    "ManyToOne",
    "OneToMany",
    "Recurrent",
    "ResetBeforeGRUCell",
    "SimpleRNNCell",
    "Stacked",
    "callbacks",
    "data",
    "datasets",
    "chrono_init",
    "default_optimizer",
    "evaluate",
    "fit",
    "from_torch",
    "init",
    "load",
    "make_rnn",
    "parallel",
    "predict",
    "save",
    "spectra",
    "streams",
    "tasks",
    "to_torch",
]
