"""Many-to-one and synchronised many-to-many models (notes 003, section 3 c and d)."""

import equinox as eqx
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from jaxrnn.layers.stacked import Stacked
from jaxrnn.models.head import Head


def check_head(rnn: Stacked, head: Head) -> None:
    """The head must read what the network emits: ValueError naming both sizes otherwise."""
    if not isinstance(rnn, Stacked):
        raise TypeError(f"rnn must be a Stacked (jaxrnn.make_rnn builds one), got {type(rnn).__name__}")
    if head.W_hy.shape[1] != rnn.output_size:
        raise ValueError(
            f"head reads {head.W_hy.shape[1]} features but rnn emits {rnn.output_size} "
            "(a bidirectional layer with merge='concat' emits 2 * hidden_size): build Head(rnn.output_size, ...)"
        )


class ManyToOne(eqx.Module):
    """Sequence in, one output: ``head`` on the final ``h`` (at each sequence's last valid step).

    Example: sentiment of a sentence, the adding problem. Returns logits (B, out).
    """

    rnn: Stacked
    head: Head

    def __check_init__(self):
        check_head(self.rnn, self.head)

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        *,
        lengths: Int[Array, " B"] | None = None,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> Float[Array, "B out"]:
        """Logits from the last layer's final state."""
        _, state = self.rnn(xs, lengths=lengths, key=key, inference=inference)
        return self.head(self.rnn.last_output(state))

    def train_logits(self, xs, targets, lengths, key) -> Float[Array, "B out"]:
        """Training protocol: the logits the loss reads (dropout on when ``key`` is given)."""
        return self(xs, lengths=lengths, key=key, inference=key is None)

    def infer(self, xs: Float[Array, "B T F"], *, lengths: Int[Array, " B"] | None = None) -> Float[Array, "B out"]:
        """Prediction protocol: logits in inference mode (no dropout)."""
        return self(xs, lengths=lengths, inference=True)


class ManyToMany(eqx.Module):
    """One output per input step: ``head`` on every ``h_t``.

    Example: tagging, next-token prediction. Returns logits (B, T, out); skipped steps
    (past a sequence's length) see ``h = 0`` and give ``b_y`` (mask them in the loss).
    """

    rnn: Stacked
    head: Head

    def __check_init__(self):
        check_head(self.rnn, self.head)

    def run(
        self,
        xs: Float[Array, "B T F"],
        state: tuple | None = None,
        *,
        lengths: Int[Array, " B"] | None = None,
        mask: Bool[Array, "B T"] | None = None,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> tuple[Float[Array, "B T out"], tuple]:
        """Logits for every step and the final states, from ``state`` (zeros if None)."""
        ys, state = self.rnn(xs, state, lengths=lengths, mask=mask, key=key, inference=inference)
        return self.head(ys), state

    def __call__(
        self,
        xs: Float[Array, "B T F"],
        *,
        lengths: Int[Array, " B"] | None = None,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> Float[Array, "B T out"]:
        """Logits for every step."""
        return self.run(xs, lengths=lengths, key=key, inference=inference)[0]

    def init_state(self, batch: int) -> tuple:
        """Training protocol (TBPTT): the zero state carried across windows."""
        return self.rnn.init_state(batch)

    def train_logits(self, xs, targets, lengths, key) -> Float[Array, "B T out"]:
        """Training protocol: the logits the loss reads (dropout on when ``key`` is given)."""
        return self(xs, lengths=lengths, key=key, inference=key is None)

    def infer(self, xs: Float[Array, "B T F"], *, lengths: Int[Array, " B"] | None = None) -> Float[Array, "B T out"]:
        """Prediction protocol: logits for every step in inference mode (no dropout)."""
        return self(xs, lengths=lengths, inference=True)
