"""``python -m infoplane``: the same command line as ``infoplane``."""

import sys

from infoplane.cli import main

sys.exit(main())
