"""``python -m twin.live``: see :mod:`twin.live.cli`."""

import sys

from twin.live.cli import main

if __name__ == "__main__":
    sys.exit(main())
