"""The loaders of jaxrnn.datasets on small files the tests write: IDX (raw and gzip), .ts
with varying lengths and missing values, text, CSV; and their errors."""

import gzip
import struct
import zlib

import numpy as np
import pytest

from jaxrnn import datasets
from jaxrnn.data import Data


def write_idx(path, array: np.ndarray, code: int, compress: bool = False) -> None:
    """The IDX format written out by hand: 0, 0, type code, ndim, big-endian dims, values."""
    big = array.astype(array.dtype.newbyteorder(">"))
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (6, 4, 3)).astype(np.uint8), np.array([3, 1, 4, 1, 5, 9], np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_raw_and_gzip_files_of_every_type(tmp_path, rng, compress):
    for code, dtype in [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32)]:
        a = (rng.normal(size=(3, 2, 5)) * 100).astype(dtype)
        write_idx(tmp_path / "a", a, code, compress)
        got = datasets.read_idx(tmp_path / "a")
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        np.testing.assert_array_equal(got, a)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_a_folder_as_rows_pixels_and_permuted_pixels(tmp_path, images, compress):
    x, y = images
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x, 0x08, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y, 0x08, compress)
    rows = datasets.mnist(tmp_path, "test")
    assert rows.inputs.shape == (6, 4, 3) and rows.inputs.dtype == np.float32
    np.testing.assert_allclose(rows.inputs, x / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(rows.targets, y)
    assert rows.targets.dtype == np.int32
    pixels = datasets.mnist(tmp_path, "test", order="pixels")
    assert pixels.inputs.shape == (6, 12, 1)
    for p in range(12):  # pixel p is row p // W, column p % W
        np.testing.assert_array_equal(pixels.inputs[:, p, 0], rows.inputs[:, p // 3, p % 3])
    permuted = datasets.mnist(tmp_path, "test", order="permuted", seed=7)
    perm = np.random.default_rng(7).permutation(12)
    np.testing.assert_array_equal(permuted.inputs[:, :, 0], pixels.inputs[:, perm, 0])
    np.testing.assert_array_equal(datasets.permutation(12, 7), perm)
    assert sorted(perm.tolist()) == list(range(12)) and perm.tolist() != list(range(12))


def test_bad_idx_files_are_named_with_what_is_wrong(tmp_path, images):
    x, _ = images
    (tmp_path / "text").write_text("hello world")
    with pytest.raises(ValueError, match=r"text: not an IDX file"):
        datasets.read_idx(tmp_path / "text")
    write_idx(tmp_path / "short", x, 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-5])
    with pytest.raises(
        ValueError, match=r"short: the header says shape \(6, 4, 3\) \(72 bytes of values\), the file holds 67"
    ):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "code").write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        datasets.read_idx(tmp_path / "code")
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte \(or .gz\) does not exist"):
        datasets.mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="order must be one of"):
        datasets.image_sequences(x, np.arange(6), order="columns")


def test_pad_sequences_and_a_scaler_that_ignores_the_padding():
    seqs = [np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]), np.array([[5.0, 50.0]]), np.zeros((0, 2)) + 1]
    inputs, lengths = datasets.pad_sequences(seqs[:2])
    assert inputs.shape == (2, 3, 2) and lengths.tolist() == [3, 1]
    np.testing.assert_array_equal(inputs[1, 1:], 0)
    scaler = datasets.fit_scaler(inputs, lengths)
    valid = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [5.0, 50.0]])  # the padding left out
    np.testing.assert_allclose(scaler.mean, valid.mean(0))
    np.testing.assert_allclose(scaler.std, valid.std(0))
    z = datasets.standardise(inputs, lengths, scaler)
    np.testing.assert_allclose(z[0], (valid[:3] - valid.mean(0)) / valid.std(0), rtol=1e-6)
    np.testing.assert_array_equal(z[1, 1:], 0)  # padding stays zero
    np.testing.assert_allclose(scaler.inverse(scaler.transform(valid)), valid)
    one_d, n = datasets.pad_sequences([[1, 2], [3]])
    assert one_d.shape == (2, 2, 1) and n.tolist() == [2, 1]
    with pytest.raises(ValueError, match="one F"):
        datasets.pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])


def test_splits_keep_time_order_and_hold_out_as_asked():
    parts = datasets.chronological_split(10, (0.7, 0.2, 0.1))
    assert [(p.start, p.stop) for p in parts] == [(0, 7), (7, 9), (9, 10)]
    with pytest.raises(ValueError, match="sum to at most 1"):
        datasets.chronological_split(10, (0.7, 0.5))
    with pytest.raises(ValueError, match="too few"):
        datasets.chronological_split(3, (0.9, 0.05, 0.05))
    data = Data(np.arange(20.0).reshape(10, 2, 1), np.arange(10), np.full(10, 2))
    train, val = datasets.validation_split(data, 0.3, shuffle=False)
    assert val.targets.tolist() == [7, 8, 9] and train.targets.tolist() == list(range(7))
    train, val = datasets.validation_split(data, 0.3, seed=0, stratify=False)
    assert sorted(train.targets.tolist() + val.targets.tolist()) == list(range(10)) and len(val.targets) == 3
    np.testing.assert_array_equal(val.inputs[:, 0, 0], 2.0 * val.targets)


def test_forecast_windows_standardise_with_the_training_part_only():
    series = np.arange(100.0) ** 1.5
    f = datasets.forecast_windows(series, 5, split=(0.6, 0.2, 0.2))
    mean, std = series[:60].mean(), series[:60].std()
    np.testing.assert_allclose(f.scaler.mean, [mean])
    np.testing.assert_allclose(f.scaler.std, [std])
    t_train, t_val, t_test = f.target_index
    assert t_train[0] == 5 and t_train[-1] == 59 and t_val[0] == 60 and t_test[-1] == 99
    i = 10  # window 10 of the training part: steps 10..14 predict step 15
    np.testing.assert_allclose(f.train.inputs[i, :, 0], (series[10:15] - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(f.train.targets[i, 0], (series[15] - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(f.target_scaler.inverse(f.test.targets[:, 0]), series[80:], rtol=1e-5)
    two = datasets.forecast_windows(np.stack([series, -series], 1), 3, horizon=2, target=1, split=(0.5, 0.25, 0.25))
    assert two.train.inputs.shape[1:] == (3, 2)
    np.testing.assert_allclose(two.target_scaler.inverse(two.train.targets[0, 0]), -series[4], rtol=1e-6)


def test_read_csv_columns_names_what_is_missing_or_wrong(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("Date,Open,Close\n2017-01-03,62.79,62.58\n2017-01-04,62.48,62.30\n")
    np.testing.assert_allclose(datasets.read_csv_columns(path, ["Close", "Open"]), [[62.58, 62.79], [62.30, 62.48]])
    with pytest.raises(
        ValueError, match=r"prices.csv: no column \['Adj Close'\]; the header has \['Date', 'Open', 'Close'\]"
    ):
        datasets.read_csv_columns(path, ["Adj Close"])
    path.write_text("Date,Close\n2017-01-03,62.58\n2017-01-04,n/a\n")
    with pytest.raises(ValueError, match=r"prices.csv, line 3: columns \['Close'\] must be numbers, got \['n/a'\]"):
        datasets.read_csv_columns(path, ["Close"])


TS = """# a UEA-style file
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true b a
@data
1.0,2.0,3.0:4.0,5.0,6.0:a
7.0:8.0:b
0.5,0.25:1.5,{last}:a
"""


def test_read_ts_pads_the_varying_lengths_and_maps_labels_in_declared_order(tmp_path):
    (tmp_path / "tiny.ts").write_text(TS.format(last="2.5"))
    data, classes = datasets.read_ts(tmp_path / "tiny.ts")
    assert classes == ("b", "a") and data.targets.tolist() == [1, 0, 1]
    assert data.inputs.shape == (3, 3, 2) and data.lengths.tolist() == [3, 1, 2]
    np.testing.assert_array_equal(data.inputs[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(data.inputs[1], [[7, 8], [0, 0], [0, 0]])
    np.testing.assert_array_equal(data.inputs[2, :2], [[0.5, 1.5], [0.25, 2.5]])


def test_read_ts_refuses_missing_values_unless_asked_and_names_bad_lines(tmp_path):
    path = tmp_path / "tiny.ts"
    path.write_text(TS.format(last="?"))
    with pytest.raises(ValueError, match=r"tiny.ts, line 12, dimension 1: a missing value"):
        datasets.read_ts(path)
    data, _ = datasets.read_ts(path, missing="nan")
    assert np.isnan(data.inputs[2, 1, 1]) and data.lengths[2] == 2
    path.write_text(TS.format(last="2.5,9.0"))
    with pytest.raises(ValueError, match=r"line 12: the dimensions have different lengths \[2, 3\]"):
        datasets.read_ts(path)
    path.write_text(TS.format(last="x"))
    with pytest.raises(ValueError, match=r"line 12, dimension 1: 'x' is not a number"):
        datasets.read_ts(path)
    path.write_text(TS.format(last="2.5").replace("@timeStamps false", "@timeStamps true"))
    with pytest.raises(ValueError, match="time-stamped"):
        datasets.read_ts(path)
    path.write_text(TS.format(last="2.5").replace("1.0,2.0,3.0:4.0,5.0,6.0:a", "1.0:2.0:c"))
    with pytest.raises(ValueError, match=r"labels \['c'\] are not among the declared @classLabel \['b', 'a'\]"):
        datasets.read_ts(path)
    path.write_text("just text\n")
    with pytest.raises(ValueError, match="expected a @key value header line or @data"):
        datasets.read_ts(path)


def test_a_character_corpus_splits_in_order_and_streams_one_hot(tmp_path):
    text = "the cat sat on the mat. " * 50
    (tmp_path / "t.txt").write_text(text)
    corpus = datasets.CharCorpus.read(tmp_path / "t.txt", split=(0.8, 0.1, 0.1))
    assert corpus.vocab == tuple(sorted(set(text)))
    assert len(corpus.train) == 960 and len(corpus.validation) == 120 and len(corpus.test) == 120
    assert corpus.decode(corpus.train) + corpus.decode(corpus.validation) + corpus.decode(corpus.test) == text
    data = corpus.streams("train", 4)
    L = (960 - 1) // 4
    assert data.inputs.shape == (4, L, len(corpus.vocab)) and data.targets.shape == (4, L)
    np.testing.assert_array_equal(data.inputs.argmax(-1)[1], corpus.train[L : 2 * L])
    np.testing.assert_array_equal(data.targets[1], corpus.train[L + 1 : 2 * L + 1])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        corpus.encode("dog")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt: not utf-8 text"):
        datasets.CharCorpus.read(tmp_path / "latin1.txt")


def test_the_austen_command_reads_r_character_vectors_written_by_hand():
    """jaxrnn.datasets.fetch's reader of R's lazy-load database, on chunks serialised here."""
    from jaxrnn.datasets.fetch import read_r_strings

    def chunk(strings, version=3):
        body = b"X\n" + struct.pack(">3i", version, 0x040201, 0x030500)
        if version == 3:
            body += struct.pack(">i", 5) + b"UTF-8"
        body += struct.pack(">2i", 16, len(strings))
        for s in strings:
            data = b"" if s is None else s.encode()
            body += struct.pack(">2i", 0x00040009, -1 if s is None else len(data)) + data
        packed = zlib.compress(body)
        return struct.pack(">I", len(body)) + packed

    rdb = chunk(["EMMA", "", "Emma Woodhouse, handsome, clever"]) + chunk(["Persuasion", None, "café"], version=2)
    assert read_r_strings(rdb) == [["EMMA", "", "Emma Woodhouse, handsome, clever"], ["Persuasion", "", "café"]]
    with pytest.raises(ValueError, match="chunk 0: not a character vector"):
        read_r_strings(
            struct.pack(">I", 0) + zlib.compress(b"X\n" + struct.pack(">3i", 2, 0, 0) + struct.pack(">2i", 14, 1))
        )
