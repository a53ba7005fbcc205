"""The keywords of a sequence call after ``xs`` and ``state``."""

from typing import Any, TypedDict

from jaxtyping import Array, Bool, Int


class SequenceOptions(TypedDict, total=False):
    """Which steps of a sequence run and where the state restarts: the keywords
    ``Recurrent``, ``Bidirectional`` and ``Stacked`` take after ``xs`` and ``state``, and
    what ``ManyToMany.run`` and ``jaxrnn.parallel.unroll`` pass on (``Recurrent``
    describes each in full).

    Args:
        lengths: (B,) int, the valid steps of each row; steps t >= lengths[b] are skipped.
        mask: (B, T) bool, the steps to run; a step where False is skipped.
        resets: (B, T) bool, where a segment starts: the state returns to ``initial``.
        initial: the state a reset returns to, of the caller's state structure; None: zeros.
    """

    lengths: Int[Array, " B"] | None
    mask: Bool[Array, "B T"] | None
    resets: Bool[Array, "B T"] | None
    initial: Any


def sequence_options(options: dict, caller: str) -> tuple[Any, Any, Any, Any]:
    """``(lengths, mask, resets, initial)`` from a caller's ``**options`` (None where not
    given); TypeError naming ``caller`` and the keywords it takes for any other keyword."""
    names = tuple(SequenceOptions.__annotations__)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(f"{caller} got unknown keyword(s) {unknown}; it takes {list(names)}")
    return tuple(options.get(name) for name in names)
