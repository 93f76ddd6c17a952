"""``superres samples``: the bundled sample images (``sample:NAME`` inputs)."""

from __future__ import annotations

import argparse

from superres.io.samples import SAMPLES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``superres samples``."""
    sub.add_parser("samples", help="list the bundled sample images")


def run(_: argparse.Namespace) -> int:
    for name, (_loader, description) in SAMPLES.items():
        print(f"sample:{name:12s} {description}")
    return 0
