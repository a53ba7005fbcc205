"""PyTorch counterparts of jaxrnn's ``ManyToOne`` and ``ManyToMany``: an ``nn.RNN`` /
``LSTM`` / ``GRU`` (batch-first) read by an ``nn.Linear``, as ``to_torch(model)`` gives them.

Imported by ``jaxrnn.interop.torch`` only when a whole model is converted, so that the
rest of jaxrnn imports without torch. The classes live at module level: a converted
model pickles with ``torch.save`` like any module.
"""

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class _TorchHeadOnRNN(torch.nn.Module):
    """``rnn`` (batch-first) and a linear ``head``: what both models share.

    ``forward(x, lengths=None)``: ``x`` (B, T, F); ``lengths`` (B,) packs the batch
    (``pack_padded_sequence``), so that the steps past a sequence's end are skipped as
    jaxrnn skips them. ``activation`` is the jaxrnn ``Head``'s (the logits are returned
    either way); ``expects_lengths`` the jaxrnn model's flag, kept for the way back.
    """

    def __init__(self, rnn: torch.nn.RNNBase, head: torch.nn.Linear, activation: str, expects_lengths: bool):
        super().__init__()
        self.rnn, self.head = rnn, head
        self.activation, self.expects_lengths = activation, expects_lengths

    def _run(self, x: torch.Tensor, lengths: torch.Tensor | None):
        """The last layer's outputs (B, T, dirs * H), zero past each length, and h_n."""
        if lengths is None:
            out, state = self.rnn(x)
        else:
            lengths = torch.as_tensor(lengths).to("cpu", torch.int64)
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, state[0] if isinstance(state, tuple) else state


class TorchManyToOne(_TorchHeadOnRNN):
    """The head on the last layer's final ``h`` (each direction's, concatenated): logits (B, out)."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The logits of each sequence.

        Args:
            x: inputs (B, T, F).
            lengths: (B,) valid steps of each sequence (None: all T); the batch is packed.

        Returns:
            Logits (B, out), as the jaxrnn ``ManyToOne`` gives them.
        """
        _, h_n = self._run(x, lengths)
        directions = 1 + self.rnn.bidirectional
        return self.head(torch.cat(list(h_n[-directions:]), dim=-1))


class TorchManyToMany(_TorchHeadOnRNN):
    """The head on every step's output: logits (B, T, out); past a sequence's length the
    output is zero and the logits are the head's bias, as in jaxrnn."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The logits of every step.

        Args:
            x: inputs (B, T, F).
            lengths: (B,) valid steps of each sequence (None: all T); the batch is packed.

        Returns:
            Logits (B, T, out), as the jaxrnn ``ManyToMany`` gives them.
        """
        out, _ = self._run(x, lengths)
        return self.head(out)
