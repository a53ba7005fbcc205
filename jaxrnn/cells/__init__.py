"""Cells: the seeds' step equations as pure functions of (state, input)."""

from jaxrnn.cells import init
from jaxrnn.cells.base import Cell, gate_norm
from jaxrnn.cells.gru import GRUCell
from jaxrnn.cells.lstm import LSTMCell
from jaxrnn.cells.simple import SimpleRNNCell

__all__ = ["Cell", "GRUCell", "LSTMCell", "SimpleRNNCell", "gate_norm", "init"]
