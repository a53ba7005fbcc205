"""The data command under its older name: ``python -m benchmarks.data SET DIR`` runs
``python -m jaxrnn.datasets.fetch SET DIR`` (installed with jaxrnn)."""

import sys

from jaxrnn.datasets.fetch import main

if __name__ == "__main__":
    sys.exit(main())
