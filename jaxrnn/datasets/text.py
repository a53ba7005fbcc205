"""A character corpus: vocabulary, ids and a train/validation/test split, ready for
``jaxrnn.streams`` and truncated BPTT."""

import os
from collections.abc import Sequence

import numpy as np

from jaxrnn._checks import check_file
from jaxrnn.data import Data, streams
from jaxrnn.datasets.sequences import chronological_split


class CharCorpus:
    """Text as character ids over a vocabulary, split in order into train, validation and
    test (the held-out text is the end of the corpus, never shuffled into training).

    Attributes:
        vocab: the characters, sorted; id i is ``vocab[i]``.
        train: int32 ids of the first part (90% by default).
        validation: int32 ids of the next part.
        test: int32 ids of the last part.
    """

    def __init__(self, text: str, *, split: Sequence[float] = (0.9, 0.05, 0.05)):
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError(f"text must be a string of at least 2 characters, got {text!r:.40}")
        self.vocab = tuple(sorted(set(text)))
        self._index = {c: i for i, c in enumerate(self.vocab)}
        ids = self.encode(text)
        parts = chronological_split(len(ids), split)
        if len(parts) != 3:
            raise ValueError(f"split must give three fractions (train, validation, test), got {tuple(split)}")
        self.train, self.validation, self.test = (ids[p] for p in parts)

    @classmethod
    def read(cls, path: str | os.PathLike, *, split: Sequence[float] = (0.9, 0.05, 0.05), encoding: str = "utf-8"):
        """The corpus of a text file (decoded with ``encoding``; a file that does not
        decode gets an error naming it and the encoding)."""
        check_file(path)
        try:
            with open(path, encoding=encoding) as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not {encoding} text ({e.reason} at byte {e.start})") from None
        return cls(text, split=split)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text``; ValueError listing characters outside the vocabulary."""
        unknown = sorted(set(text) - set(self._index))
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}")
        return np.asarray([self._index[c] for c in text], np.int32)

    def decode(self, ids) -> str:
        """The text of ``ids``."""
        return "".join(self.vocab[int(i)] for i in np.asarray(ids).ravel())

    def streams(self, part: str, n_streams: int) -> Data:
        """``part`` ("train", "validation" or "test") cut into ``n_streams`` contiguous
        streams for next-character prediction: inputs one-hot (n_streams, L, V) float32,
        targets ids (n_streams, L). Fit them as
        ``TBPTT(Batches(data, n_streams), k)``: the state flows along each stream."""
        if part not in ("train", "validation", "test"):
            raise ValueError(f"part must be 'train', 'validation' or 'test', got {part!r}")
        x, y = streams(getattr(self, part), n_streams)
        x = np.asarray(x)
        return Data(np.eye(len(self.vocab), dtype=np.float32)[x], np.asarray(y))
