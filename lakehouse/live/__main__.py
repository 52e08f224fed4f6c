"""``python -m lakehouse.live``: see :mod:`lakehouse.live.cli`."""

import sys

from lakehouse.live.cli import main

if __name__ == "__main__":
    sys.exit(main())
