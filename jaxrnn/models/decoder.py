"""Autoregressive decoder: a cell whose input at step t is its own output from step t-1.

Used by ``OneToMany`` and ``EncoderDecoder``. In training the previous *targets* are fed
(teacher forcing, one scan with the input projection hoisted); at inference the model
feeds back its own predictions (a scan over cell + head). Two kinds of output:

- tokens (``vocab_size`` given): logits over a vocabulary; the fed-back input is the
  one-hot of the previous token (the target in training, the argmax at inference);
  step 0 reads ``start_token``.
- values (``vocab_size=None``): real vectors; the fed-back input is the previous value
  (``head.activate`` of the logits at inference); step 0 reads zeros.

An optional context vector (B, C) is concatenated to the input at every step.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxrnn._checks import check_count, check_temperature
from jaxrnn.cells.base import Cell, State
from jaxrnn.layers.recurrent import Recurrent
from jaxrnn.models.head import Head


class Decoder(eqx.Module):
    """``cell`` + ``head`` run autoregressively (see the module doc): the decoder of
    ``OneToMany`` and ``EncoderDecoder``, which call it.

    Args:
        cell: the decoder's cell; its ``input_size`` must equal the head's output size
            (the vocabulary, or the values' width) + ``context_size``.
        head: the linear head from the state to the outputs (logits).
        vocab_size: tokens: the vocabulary (the fed-back input is the previous token's
            one-hot); None: real values (the fed-back input is the previous value).
        start_token: the token step 0 reads (tokens only).
        context_size: C, the width of a context vector (B, C) joined to the input at
            every step (0: none).
    """

    cell: Cell
    head: Head
    vocab_size: int | None = eqx.field(static=True)
    start_token: int = eqx.field(static=True)
    context_size: int = eqx.field(static=True)

    def __init__(
        self,
        cell: Cell,
        head: Head,
        *,
        vocab_size: int | None = None,
        start_token: int = 0,
        context_size: int = 0,
    ):
        out = head.W_hy.shape[0]
        if vocab_size is not None and vocab_size != out:
            raise ValueError(f"vocab_size ({vocab_size}) must equal the head's output size ({out})")
        if cell.input_size != out + context_size:
            raise ValueError(
                f"cell.input_size must be the head's output size + context_size = {out + context_size}, "
                f"got {cell.input_size}"
            )
        if vocab_size is not None and not 0 <= start_token < vocab_size:
            raise ValueError(f"start_token must lie in [0, {vocab_size}), got {start_token}")
        self.cell, self.head = cell, head
        self.vocab_size, self.start_token, self.context_size = vocab_size, start_token, context_size

    def _checked(self, targets) -> Array:
        out = self.head.W_hy.shape[0]
        if self.vocab_size is None:
            if getattr(targets, "ndim", None) != 3 or targets.shape[-1] != out:
                raise ValueError(f"targets must be values of shape (B, T, {out}), got {tuple(jnp.shape(targets))}")
            return targets
        if getattr(targets, "ndim", None) != 2 or not jnp.issubdtype(targets.dtype, jnp.integer):
            got = (tuple(jnp.shape(targets)), str(jnp.result_type(targets)))
            raise ValueError(f"targets must be token ids: integers of shape (B, T), got (shape, dtype) {got}")
        message = f"targets must be token ids in [0, {self.vocab_size}) (the vocabulary)"
        if isinstance(targets, jax.core.Tracer):
            return eqx.error_if(targets, (targets < 0) | (targets >= self.vocab_size), message)
        if targets.size and (int(targets.min()) < 0 or int(targets.max()) >= self.vocab_size):
            raise ValueError(f"{message}, got min {int(targets.min())}, max {int(targets.max())}")
        return targets

    def _feed(self, y: Array) -> Float[Array, "*b out"]:
        """The input vector that encodes a previous output (token ids or values)."""
        if self.vocab_size is None:
            return y
        return jax.nn.one_hot(y, self.vocab_size, dtype=self.cell.W_xh.dtype)

    def _start(self, batch: int) -> Array:
        if self.vocab_size is None:
            return jnp.zeros((batch, self.head.W_hy.shape[0]), self.cell.W_xh.dtype)
        return jnp.full((batch,), self.start_token)

    def _with_context(self, inputs: Array, context: Array | None) -> Array:
        if self.context_size == 0:
            return inputs
        if context is None or context.shape[-1] != self.context_size:
            got = None if context is None else tuple(context.shape)
            raise ValueError(f"context must have shape (B, {self.context_size}), got {got}")
        context = jnp.broadcast_to(
            context[..., None, :] if inputs.ndim == 3 else context, (*inputs.shape[:-1], self.context_size)
        )
        return jnp.concatenate([inputs, context], axis=-1)

    def teacher_forced(
        self,
        state: State,
        targets: Int[Array, "B T"] | Float[Array, "B T out"],
        context: Float[Array, "B C"] | None = None,
    ) -> Float[Array, "B T out"]:
        """Logits for every step when step t reads target t-1 (step 0 reads the start).

        Token targets must be integer ids (B, T) in [0, vocab_size) (checked now when
        concrete, at run time under ``jit``); value targets (B, T, out).
        """
        targets = self._checked(targets)
        B = targets.shape[0]
        prev = jnp.concatenate([self._start(B)[:, None], targets[:, :-1]], axis=1)
        inputs = self._with_context(self._feed(prev), context)
        ys, _ = Recurrent(self.cell)(inputs, state)
        return self.head(ys)

    def generate(
        self,
        state: State,
        steps: int,
        context: Float[Array, "B C"] | None = None,
        *,
        end_token: int | None = None,
        temperature: float = 0.0,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Array, Float[Array, "B steps out"]]:
        """Feed back own predictions for ``steps`` steps; returns ``(predictions, logits)``.

        Tokens: ``temperature=0`` is greedy (argmax), ``> 0`` samples from
        softmax(logits / temperature) with ``key``. Once a sequence has emitted
        ``end_token``, its later predictions are ``end_token``. Values: predictions
        are ``head.activate(logits)``.
        """
        check_count(steps, "steps", 0)
        temperature = check_temperature(temperature)
        if end_token is not None and self.vocab_size is not None and not 0 <= end_token < self.vocab_size:
            raise ValueError(f"end_token must lie in [0, {self.vocab_size}) (the vocabulary), got {end_token}")
        if temperature > 0 and key is None:
            raise ValueError("key is required when temperature > 0")
        B = jax.tree.leaves(state)[0].shape[0]
        keys = jax.random.split(key, steps) if temperature > 0 else jnp.zeros((steps, 2), jnp.uint32)

        def body(carry, k):
            s, y_prev, done = carry
            s = self.cell(s, self._with_context(self._feed(y_prev), context))
            logits = self.head(self.cell.output(s))
            if self.vocab_size is None:
                y = self.head.activate(logits)
            else:
                y = jax.random.categorical(k, logits / temperature) if temperature > 0 else jnp.argmax(logits, -1)
                if end_token is not None:
                    y = jnp.where(done, end_token, y)
                    done = done | (y == end_token)
            return (s, y, done), (y, logits)

        init = (state, self._start(B), jnp.zeros((B,), bool))
        _, (ys, logits) = jax.lax.scan(body, init, keys)
        return jnp.swapaxes(ys, 0, 1), jnp.swapaxes(logits, 0, 1)
