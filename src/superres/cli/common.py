"""Argument groups and checks that several commands share, written once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from superres.errors import SuperresError

#: ``--download`` of every command that may need pinned files.
DOWNLOAD_HELP = (
    "download the pinned files this needs (ImageNet trunks, LPIPS heads, NIQE model) when they "
    "are not here, verified by sha256 (default: never touch the network; see `superres assets`)"
)

#: ``--data-root`` of the commands that read benchmark sets.
BENCHMARK_ROOT_HELP = (
    "folder holding Set5/, Set14/, ... (default: $SUPERRES_DATA, else the user cache)"
)


def add_quiet(parser: argparse.ArgumentParser, text: str = "no info messages") -> None:
    """``-q/--quiet``; ``text``, its help, says what the command stops printing."""
    parser.add_argument("-q", "--quiet", action="store_true", help=text)


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``-q/--quiet``, for the commands that run networks."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)",
    )
    add_quiet(parser, "no progress bar or info messages")


def add_data_root(parser: argparse.ArgumentParser, text: str = BENCHMARK_ROOT_HELP) -> None:
    """``--data-root``; ``text`` is its help (what the command looks for there)."""
    parser.add_argument("--data-root", type=Path, default=None, help=text)


def add_download(parser: argparse.ArgumentParser) -> None:
    """``--download``: let the command fetch the pinned files it needs."""
    parser.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)


def add_eager(parser: argparse.ArgumentParser, fused: str) -> None:
    """``--eager``; ``fused`` says what the default path is."""
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the networks as plain PyTorch modules (default on the CPU: the fused float32 "
        f"path{fused})",
    )


def check_output_parent(path: Path, flag: str) -> None:
    """Fail before any work when the folder that should receive ``path`` is missing."""
    if not path.parent.is_dir():
        raise SuperresError(
            f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first"
        )


def require_rows(models: Sequence[str], weights: Sequence[object], message: str) -> None:
    """``--models`` and ``--weights`` may each be empty, not both."""
    if not models and not weights:
        raise SuperresError(message)
