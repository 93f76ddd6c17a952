"""Argument groups and checks that several commands share, written once."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from superres.errors import SuperresError
from superres.io.files import check_output_folder

#: ``--download`` of every command that may need pinned files.
DOWNLOAD_HELP = (
    "download the pinned files this needs (ImageNet trunks, LPIPS heads, NIQE model) when they "
    "are not here, verified by sha256 (default: never touch the network; see `superres assets`)"
)

#: ``--data-root`` of the commands that read benchmark sets.
BENCHMARK_ROOT_HELP = (
    "folder holding Set5/, Set14/, ... (default: $SUPERRES_DATA, else the user cache)"
)


@dataclass(frozen=True, kw_only=True)
class CommandText:
    """What ``--help`` says about one command, kept beside the command's code.

    ``help`` is its line in the parent's list of commands; ``description`` the paragraph above its
    options, re-wrapped to the terminal (so it may be written across lines); ``epilog`` the text
    below them. ``raw`` keeps the line breaks of both as written, for an epilog laid out by hand.
    """

    help: str
    description: str | None = None
    epilog: str | None = None
    raw: bool = False


def add_command(
    sub: argparse._SubParsersAction, name: str, text: CommandText
) -> argparse.ArgumentParser:
    """Register the command ``name`` with its texts; the caller adds its arguments."""
    return sub.add_parser(
        name,
        help=text.help,
        description=text.description,
        epilog=text.epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter
        if text.raw
        else argparse.HelpFormatter,
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


def add_allow_modified(parser: argparse.ArgumentParser) -> None:
    """``--allow-modified``: score benchmark sets whose files differ from the catalog's."""
    parser.add_argument(
        "--allow-modified",
        action="store_true",
        help="score a benchmark set whose HR image count or names differ from the official "
        "release (the table shows its image count); by default that is an error",
    )


_Number = TypeVar("_Number", int, float)


def bounded(
    parse: Callable[[str], _Number], low: _Number, high: _Number | None, expected: str
) -> Callable[[str], _Number]:
    """An argparse type: ``parse(text)`` within ``[low, high]`` (no upper bound when ``high`` is
    ``None``); anything else is a usage error saying ``expected``."""

    def check(text: str) -> _Number:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return check


#: Scales and counts.
positive_int = bounded(int, 1, None, "a whole number >= 1")
#: ``--realism``, ``--denoise``.
unit_fraction = bounded(float, 0.0, 1.0, "a number in [0, 1]")
#: ``--quality`` (JPEG/WebP).
quality_arg = bounded(int, 0, 100, "an integer 0..100")


def add_datasets_arg(parser: argparse.ArgumentParser, text: str, *, many: bool = True) -> None:
    """``--datasets NAME ...`` (``many``) or ``--dataset NAME``: each spelling is accepted."""
    flags = ("--datasets", "--dataset") if many else ("--dataset", "--datasets")
    parser.add_argument(
        *flags, dest=flags[0].lstrip("-"), nargs="+" if many else None, required=True, help=text
    )


def add_scales_arg(
    parser: argparse.ArgumentParser, text: str, *, many: bool, default: int | None
) -> None:
    """``--scales N ...`` (``many``) or ``--scale N``: each spelling is accepted; whole numbers
    >= 1 only (0 or ``x4`` is a usage error, exit 2)."""
    flags = ("--scales", "--scale") if many else ("--scale", "--scales")
    parser.add_argument(
        *flags,
        dest=flags[0].lstrip("-"),
        nargs="+" if many else None,
        type=positive_int,
        default=default,
        metavar="N",
        help=text,
    )


def check_output_parent(path: Path, flag: str) -> None:
    """Fail before any work when the folder that should receive the file ``path`` cannot be made
    (a file in its way); a missing one is made when the file is written."""
    check_output_folder(path.parent, flag)


def require_rows(models: Sequence[str], weights: Sequence[object], message: str) -> None:
    """``--models`` and ``--weights`` may each be empty, not both."""
    if not models and not weights:
        raise SuperresError(message)


def add_weights_args(
    parser: argparse.ArgumentParser,
    *,
    model: str,
    weights: str,
    model_flags: Sequence[str] = ("--model",),
) -> None:
    """``--model NAME`` and ``--weights FILE`` of the commands that load one network.

    ``model`` and ``weights`` are their help texts: what each command does when one is left out;
    ``model_flags`` the option strings of ``--model`` (e.g. with Real-ESRGAN's ``-n``).
    """
    parser.add_argument(*model_flags, dest="model", default=None, help=model)
    parser.add_argument("--weights", type=Path, default=None, help=weights)


def add_rows_args(parser: argparse.ArgumentParser, *, models: str, weights: str) -> None:
    """``--models NAME ...`` and ``--weights FILE ...``: every name or file is one row of a table.

    ``models`` and ``weights`` are their help texts; :func:`require_rows` checks that the two
    together name at least one row.
    """
    parser.add_argument("--models", nargs="+", default=[], metavar="NAME", help=models)
    parser.add_argument("--weights", nargs="+", type=Path, default=[], metavar="FILE", help=weights)


def add_output_json(parser: argparse.ArgumentParser, text: str) -> None:
    """``--output-json FILE``; ``text`` says what the command writes there."""
    parser.add_argument("--output-json", type=Path, default=None, help=text)
