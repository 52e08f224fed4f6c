"""``python -m twin``: the simulator's own command line (:mod:`twin.cli`)."""

import sys

from twin.cli import main

sys.exit(main())
