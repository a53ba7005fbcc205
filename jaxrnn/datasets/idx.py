"""IDX files (the format of MNIST and Fashion-MNIST) and images read as sequences.

An IDX file is two zero bytes, a type code, the number of dimensions, each dimension as a
big-endian uint32, then the values in C order, big-endian. ``read_idx`` reads it raw or
gzip-compressed (told apart by the gzip magic bytes, not the file name).
"""

import gzip
import math
import os
import struct

import numpy as np

from jaxrnn._checks import check_count, check_file
from jaxrnn.data import Data

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX type code -> big-endian NumPy dtype."""

ORDERS = ("rows", "pixels", "permuted")

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""The file names of the MNIST and Fashion-MNIST distributions (each also found with ``.gz``)."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in an IDX file, raw or gzip-compressed, in native byte order.

    Args:
        path: the file.

    Returns:
        The array, with the shape and dtype the header gives.

    Raises:
        ValueError: naming the file, for one that is not IDX (its first bytes), an unknown
            type code, a header or values shorter or longer than the header says.
    """
    check_file(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (it must start with two zero bytes, got {raw[:4]!r})")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x}; known: {', '.join(f'0x{c:02x}' for c in IDX_TYPES)}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header ({ndim} dimensions need {header} bytes, the file has {len(raw)})"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: the header says shape {dims} ({expected} bytes of values), the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def image_sequences(images: np.ndarray, labels: np.ndarray, *, order: str = "rows", seed: int = 0) -> Data:
    """Images (N, H, W) of uint8 pixels as sequences for a many-to-one classifier.

    Pixels are scaled to [0, 1] (divided by 255), float32; targets are the labels as int32
    class ids.

    Args:
        images: (N, H, W) uint8.
        labels: (N,) integer classes.
        order: "rows": T = H steps of W pixels (row-by-row MNIST: T 28, F 28);
            "pixels": T = H * W steps of one pixel, row after row (sequential MNIST, T 784);
            "permuted": the pixels in one fixed random order, the same for every image
            (permuted MNIST, Le et al. 2015).
        seed: the permutation's seed (NumPy's ``default_rng``): the same order in every
            process and for the training and the test images.

    Returns:
        ``Data(inputs (N, T, F), targets (N,))``.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {images.shape[0]} integer classes, got {labels.dtype} {labels.shape}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    x = images.astype(np.float32) / 255.0
    N, H, W = images.shape
    if order == "rows":
        inputs = x
    else:
        inputs = x.reshape(N, H * W, 1)
        if order == "permuted":
            inputs = inputs[:, permutation(H * W, seed)]
    return Data(inputs, labels.astype(np.int32))


def permutation(n: int, seed: int) -> np.ndarray:
    """The fixed pixel order of permuted MNIST: ``default_rng(seed).permutation(n)``.

    Args:
        n: the number of pixels (784).
        seed: the seed.

    Returns:
        (n,) int indices.
    """
    return np.random.default_rng(check_count(seed, "seed", 0)).permutation(n)


def mnist(folder: str | os.PathLike, split: str = "train", *, order: str = "rows", seed: int = 0) -> Data:
    """MNIST or Fashion-MNIST from the folder of its four IDX files (raw or ``.gz``).

    Args:
        folder: the folder (``python -m jaxrnn.datasets.fetch mnist DIR`` writes one).
        split: "train" (60,000 images) or "test" (10,000).
        order: as ``image_sequences``: "rows" (28 steps of 28 pixels), "pixels" (784 steps
            of 1) or "permuted" (784 pixels in the fixed order of ``permutation``).
        seed: the permutation's seed.

    Returns:
        A ``Data``: inputs (N, T, F) float32 in [0, 1], targets (N,) class ids.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    paths = [_find(folder, name) for name in MNIST_FILES[split]]
    images, labels = (read_idx(p) for p in paths)
    if len(images) != len(labels):
        raise ValueError(f"{paths[0]} holds {len(images)} images but {paths[1]} {len(labels)} labels")
    return image_sequences(images, labels, order=order, seed=seed)


def _find(folder, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{os.path.join(folder, name)} (or .gz) does not exist")
