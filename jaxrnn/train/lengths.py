"""Lengths that are hard to forget.

A model trained on padded sequences with their lengths and then evaluated without them
reads the padding as data: tried on JapaneseVowels, a GRU scored 97.0% with lengths and
40.3% evaluated without them, with no word of it. So a jaxrnn model trained with lengths of
which some are shorter than the data's steps records it (``expects_lengths``, kept in the
saved file), and ``evaluate``, ``predict`` and fit's validation warn when such a model gets
no lengths (lengths that all equal T, as equal-length files give, mark nothing); data without lengths whose sequences
end in steps that are exactly zero, as padding does, get a warning too. Zeros at both
ends are taken for data, not padding: MNIST read row by row starts and ends with blank
rows in nearly every image, a padded recording starts with data.
"""

import dataclasses
import warnings

import numpy as np

from jaxrnn.data import Data


class MissingLengthsWarning(UserWarning):
    """Sequences that look padded, or a model trained with lengths, and no lengths given.

    Given by ``fit``, ``evaluate`` and ``predict`` (a ``UserWarning``): where inputs end in
    steps of zeros and no ``lengths`` came with them, or where a model trained with
    lengths gets none. Filter it as any warning
    (``warnings.simplefilter("ignore", jaxrnn.MissingLengthsWarning)``).
    """


PADDED_SHARE = 0.1
"""The share of sequences ending in all-zero steps from which data look padded."""


def trained_with_lengths(model) -> bool:
    """Whether ``model`` (a jaxrnn model) was trained with lengths."""
    return bool(getattr(model, "expects_lengths", False))


def padded(data: Data) -> bool:
    """Whether ``data`` has lengths and some sequence is shorter than the steps it is given
    (lengths equal to T everywhere, as a reader of equal-length files gives, are no padding)."""
    if data.lengths is None or np.ndim(data.inputs) != 3:
        return False
    return bool(np.any(np.asarray(data.lengths) < np.shape(data.inputs)[1]))


def remember(model, data: Data):
    """``model`` marked as trained with lengths (when its class can say so) if ``data`` is
    padded: only then does a later call without lengths read padding as data."""
    if not padded(data) or trained_with_lengths(model) or not _can_remember(model):
        return model
    return dataclasses.replace(model, expects_lengths=True)


def _can_remember(model) -> bool:
    return dataclasses.is_dataclass(model) and "expects_lengths" in {f.name for f in dataclasses.fields(model)}


DATA_ADVICE = "pass (inputs, targets, lengths)"
"""How ``fit`` and ``evaluate`` take lengths; ``predict`` takes them as ``lengths=``."""


def warn_if_missing(
    model,
    data: Data,
    name: str,
    *,
    trained_with: bool = False,
    advice: str = DATA_ADVICE,
    stacklevel: int = 3,
) -> None:
    """Warn when ``data`` (``name``) has no lengths but should: the model was trained with
    padded data and their lengths (or ``trained_with``: the training data of this fit are
    such), or its sequences end in all-zero steps as padded ones do. ``advice``: how the
    call that warns takes lengths. Packed rows (``segments``) need none."""
    if data.lengths is not None or data.segments is not None or np.ndim(data.inputs) != 3:
        return
    if trained_with or trained_with_lengths(model):
        why = "the training data have lengths" if trained_with else "the model was trained with lengths"
        warnings.warn(
            f"{name} has no lengths but {why}: without them the padding is read as data ({advice})",
            MissingLengthsWarning,
            stacklevel=stacklevel,
        )
        return
    share, zeros, leading = padded_share(data.inputs)
    if share >= PADDED_SHARE and leading < PADDED_SHARE:
        warnings.warn(
            f"{name}: {share:.0%} of the sequences end in steps that are all zeros ({zeros} such steps in all), "
            f"as padded sequences do, and no lengths were given: if they are padding, {advice} so that those "
            "steps are skipped",
            MissingLengthsWarning,
            stacklevel=stacklevel,
        )


def padded_share(inputs) -> tuple[float, int, float]:
    """Of sequences (N, T, F): the share whose last step is all zeros, how many trailing
    all-zero steps there are in all, and the share whose first step is all zeros."""
    nonzero = np.any(np.asarray(inputs) != 0, axis=-1)  # (N, T)
    if nonzero.size == 0:
        return 0.0, 0, 0.0
    trailing = np.argmax(nonzero[:, ::-1], axis=1)  # zero steps at the end of each row
    trailing = np.where(nonzero.any(1), trailing, nonzero.shape[1])
    return float((trailing > 0).mean()), int(trailing.sum()), float((~nonzero[:, 0]).mean())
