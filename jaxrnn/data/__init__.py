"""Data: arrays and their checks, and the sources ``fit`` trains from.

- ``Data``: ``(inputs, targets[, lengths])`` arrays, checked (``arrays.py``);
- ``Batches``: arrays in memory, in shuffled batches (``batches.py``);
- ``TBPTT``: the same, each batch cut into truncated-BPTT windows (``tbptt.py``);
- ``HostBatches``: batches made on the host by any iterable (``host.py``);
- ``streams``: one long sequence cut into parallel streams for ``TBPTT``.

Real data sets are loaded by ``jaxrnn.datasets`` (which also packs sequences into rows);
the built-in synthetic and notes tasks are ``jaxrnn.tasks``.
"""

from jaxrnn.data.arrays import Data, streams
from jaxrnn.data.batches import Batches
from jaxrnn.data.host import HostBatches
from jaxrnn.data.tbptt import TBPTT

__all__ = ["Batches", "Data", "HostBatches", "TBPTT", "streams"]
