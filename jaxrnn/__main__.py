"""``python -m jaxrnn``: see ``jaxrnn.cli``."""

import sys

from jaxrnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
