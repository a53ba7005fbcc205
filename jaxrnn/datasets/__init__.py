"""Real data from standard files: IDX images (MNIST, Fashion-MNIST) as row, pixel or
permuted-pixel sequences; a character corpus from a text file; a series from an array or
CSV columns windowed for forecasting; UEA/UCR ``.ts`` classification files with varying
lengths. With them the utilities every data set needs: ragged sequences padded with
lengths, or packed end to end into dense rows (``pack``), standardisation that ignores
padding, splits.

Everything here reads files from a path you give and returns NumPy arrays (``Data``);
nothing is downloaded. The data guide names the package that ships each data set and the
command that gets it.
"""

from jaxrnn.datasets.idx import image_sequences, mnist, permutation, read_idx
from jaxrnn.datasets.packing import Packed, pack
from jaxrnn.datasets.sequences import (
    Scaler,
    chronological_split,
    fit_scaler,
    pad_sequences,
    standardise,
    validation_split,
)
from jaxrnn.datasets.series import SeriesSplits, forecast_windows, read_csv_columns
from jaxrnn.datasets.text import CharCorpus
from jaxrnn.datasets.ts import Labelled, read_ts

__all__ = [
    "CharCorpus",
    "SeriesSplits",
    "Labelled",
    "Packed",
    "Scaler",
    "chronological_split",
    "fit_scaler",
    "forecast_windows",
    "image_sequences",
    "mnist",
    "pack",
    "pad_sequences",
    "permutation",
    "read_csv_columns",
    "read_idx",
    "read_ts",
    "standardise",
    "validation_split",
]
