"""Cells: the notes' step equations as pure functions of (state, input)."""

from jaxrnn.cells import init
from jaxrnn.cells.base import Cell, FusedCell, SummedCell, gate_norm
from jaxrnn.cells.chrono import chrono_init
from jaxrnn.cells.gru import GRUCell, ResetBeforeGRUCell
from jaxrnn.cells.lstm import LSTMCell
from jaxrnn.cells.simple import SimpleRNNCell

CELLS = {"rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
"""The three cells by short name: the one list the study, the command line and the benchmarks read."""

__all__ = [
    "CELLS",
    "Cell",
    "FusedCell",
    "GRUCell",
    "LSTMCell",
    "ResetBeforeGRUCell",
    "SimpleRNNCell",
    "SummedCell",
    "chrono_init",
    "gate_norm",
    "init",
]
