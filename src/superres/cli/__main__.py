"""``python -m superres.cli``: the ``superres`` command."""

import sys

from superres.cli import main

sys.exit(main())
