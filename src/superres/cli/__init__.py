"""The ``superres`` command: parse arguments, call the library, turn errors into exit codes.

Each command is one module of this package with ``TEXT`` (its help texts, a
:class:`~superres.cli.common.CommandText`), ``add_arguments(parser)`` and ``run(args) -> int``;
this module assembles them. Exit codes: 0 success; 1 a
:class:`~superres.errors.SuperresError` (message on stderr names the problem and the fix);
2 bad command-line usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

from superres._version import __version__
from superres.cli import (
    assets,
    data,
    datasets,
    export,
    metrics,
    models,
    mos,
    report,
    samples,
    train,
    upscale,
)
from superres.cli import eval as eval_
from superres.cli.common import add_command
from superres.errors import SuperresError

#: Every command's module, in the order ``superres --help`` lists them.
_COMMANDS: dict[str, ModuleType] = {
    "upscale": upscale,
    "eval": eval_,
    "train": train,
    "models": models,
    "datasets": datasets,
    "samples": samples,
    "assets": assets,
    "data": data,
    "mos": mos,
    "metrics": metrics,
    "report": report,
    "export": export,
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superres",
        description="Single-image super-resolution: upscale images and benchmark models.",
    )
    parser.add_argument("--version", action="version", version=f"superres {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in _COMMANDS.items():
        command.add_arguments(add_command(sub, name, command.TEXT))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``superres`` console script; returns the exit code.

    Every :class:`~superres.errors.SuperresError` becomes one line on stderr and exit code 1;
    Ctrl-C (``KeyboardInterrupt``) while the command runs, the line ``superres: interrupted`` and
    130. Run as the program (``argv`` is ``None``), a Ctrl-C after the command has finished is
    ignored: the exit code stays the command's instead of the silent -SIGINT death the
    interpreter's shutdown would give.
    """
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = _COMMANDS[args.command].run
    try:
        return run(args)
    except SuperresError as exc:
        print(f"superres {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("superres: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            _ignore_interrupts()


def _ignore_interrupts() -> None:
    """From now on SIGINT does nothing (the main thread of the program only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
