"""``python -m superres`` (also what ``torchrun -m superres`` runs)."""

import sys

from superres.cli import main

sys.exit(main())
