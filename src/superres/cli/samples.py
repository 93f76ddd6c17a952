"""``superres samples``: the bundled sample images (``sample:NAME`` inputs)."""

from __future__ import annotations

import argparse

from superres.cli.common import CommandText
from superres.io.samples import SAMPLES

TEXT = CommandText(help="list the bundled sample images")


def add_arguments(_: argparse.ArgumentParser) -> None:
    """The listing takes no options."""


def run(_: argparse.Namespace) -> int:
    for name, (_loader, description) in SAMPLES.items():
        print(f"sample:{name:12s} {description}")
    return 0
