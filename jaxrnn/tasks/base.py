"""What a task hands to ``fit``: arrays, the architecture and head it needs, its loss."""

from typing import NamedTuple

import jax
from jaxtyping import PRNGKeyArray

from jaxrnn.cells.base import Cell
from jaxrnn.data import Data
from jaxrnn.layers.stacked import make_rnn
from jaxrnn.models import Decoder, EncoderDecoder, Head, ManyToMany, ManyToOne

ARCHITECTURES = ("many_to_one", "many_to_many", "encoder_decoder")


class Task(NamedTuple):
    """A ready-to-fit problem.

    ``architecture``: 'many_to_one', 'many_to_many' or 'encoder_decoder'; ``loss``: 'mse'
    or 'cross_entropy'; ``output_size``: the head's width (classes, or values);
    ``baseline``: the loss of the best predictor without memory (None if not defined);
    ``info``: task-specific extras (vocabulary, scaling, ...).
    """

    name: str
    train: Data
    validation: Data
    architecture: str
    loss: str
    output_size: int
    baseline: float | None
    info: dict

    @property
    def input_size(self) -> int:
        """Features per input step."""
        return int(self.train.inputs.shape[-1])


def build_model(
    task: Task, cell_type: type[Cell], hidden_size: int, *, key: PRNGKeyArray, num_layers: int = 1, **cell_kwargs
):
    """The model ``task`` needs: ``cell_type`` layers of ``hidden_size`` and a linear head.

    Args:
        task: the task (its input size, architecture and output size).
        cell_type: ``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` or ``ResetBeforeGRUCell``.
        hidden_size: H.
        key: initialises the weights.
        num_layers: stacked layers.
        **cell_kwargs: the cell's options (``activation``, ``layer_norm``, ...).

    Returns:
        A ``ManyToOne``, ``ManyToMany`` or ``EncoderDecoder``, as ``task.architecture`` says.
    """
    k_rnn, k_head, k_dec = jax.random.split(key, 3)
    rnn = make_rnn(cell_type, task.input_size, hidden_size, key=k_rnn, num_layers=num_layers, **cell_kwargs)
    head = Head(hidden_size, task.output_size, key=k_head)
    if task.architecture == "many_to_one":
        return ManyToOne(rnn, head)
    if task.architecture == "many_to_many":
        return ManyToMany(rnn, head)
    V = task.output_size
    cell = cell_type(V, hidden_size, key=k_dec, **cell_kwargs)
    return EncoderDecoder(rnn, Decoder(cell, head, vocab_size=V, start_token=task.info["start_token"]))


def split(inputs, targets, n_validation: int) -> tuple[Data, Data]:
    """The first ``n_validation`` examples for validation, the rest for training."""
    return Data(inputs[n_validation:], targets[n_validation:]), Data(inputs[:n_validation], targets[:n_validation])
