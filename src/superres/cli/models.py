"""``superres models``: the registered architectures and the shipped weights."""

from __future__ import annotations

import argparse

from superres.cli.common import CommandText
from superres.models import get_model_spec, list_models
from superres.models.catalog import DEFAULT_MODELS, WEIGHTS

TEXT = CommandText(help="list the registered models")


def add_arguments(_: argparse.ArgumentParser) -> None:
    """The listing takes no options."""


def run(_: argparse.Namespace) -> int:
    """Print one line per registered model, then one per shipped weights file."""
    for name in list_models():
        spec = get_model_spec(name)
        scales = "any" if spec.scales is None else ",".join(map(str, spec.scales))
        print(f"{name:24s} scales: {scales:10s} {spec.summary}")
    print("\nshipped weights (use as --model NAME; docs/models.md has their scores):")
    defaults = {name: scale for scale, name in DEFAULT_MODELS.items()}
    for name in WEIGHTS:
        entry = WEIGHTS.get(name)
        tag = f" [default for x{defaults[name]}]" if name in defaults else ""
        print(f"{name:24s} x{entry.scale:<17d} {entry.summary}{tag}")
    return 0
