"""``python -m bioprocess_cli`` = the ``lakehouse`` console script."""

import sys

from bioprocess_cli.main import main

sys.exit(main())
