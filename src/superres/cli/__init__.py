"""The ``superres`` command: parse arguments, call the library, turn errors into exit codes.

Each command is one module of this package with ``TEXT`` (its help texts, a
:class:`~superres.cli.common.CommandText`), ``add_arguments(parser)`` and ``run(args) -> int``;
this module assembles them. Exit codes: 0 success; 1 a
:class:`~superres.errors.SuperresError` (message on stderr names the problem and the fix);
2 bad command-line usage, including a bad value the library refuses (:data:`BAD_VALUE`: an
unknown name, an unsupported scale, an option out of range); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import NoReturn

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
from superres.errors import ConfigError, SuperresError, UnknownNameError, UnsupportedScaleError

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


#: The library's errors that mean "a value given on the command line is wrong": exit 2, as
#: argparse's own refusals, where every other :class:`SuperresError` exits 1.
BAD_VALUE: tuple[type[SuperresError], ...] = (UnknownNameError, UnsupportedScaleError, ConfigError)

_REQUIRED = "the following arguments are required"


class _Parser(argparse.ArgumentParser):
    """An option a command does not know is an error of that command, with its usage (plain
    argparse passes it up and shows ``superres``'s usage instead), and it is named before any
    missing required option (``eval --bogus`` says ``--bogus``, not "--datasets is required").
    Sub-command parsers are of the parser's class, so every level gets this."""

    _args: tuple[str, ...] = ()

    def parse_known_args(  # type: ignore[override]  (typeshed overloads on namespace)
        self, args: Iterable[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace | None, list[str]]:
        self._args = tuple(sys.argv[1:] if args is None else args)
        parsed, extras = super().parse_known_args(list(self._args), namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        unknown = self._unknown_options() if message.startswith(_REQUIRED) else []
        if unknown:
            message = f"unrecognized arguments: {' '.join(unknown)}"
        super().error(message)

    def _unknown_options(self) -> list[str]:
        """The tokens of this parser's arguments that look like options it does not have."""
        known = list(self._option_string_actions)
        unknown = []
        for token in self._args:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if not name.startswith("-") or name == "-" or _NUMBER.match(name):
                continue
            prefixed = name.startswith("--") and any(k.startswith(name) for k in known)
            if name not in known and not prefixed:
                unknown.append(token)
        return unknown


_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    Every :class:`~superres.errors.SuperresError`, and any ``OSError`` the command did not turn
    into one (a full disk, a folder without permission), becomes one line on stderr and exit 1;
    Ctrl-C (``KeyboardInterrupt``) while the command runs, the line ``superres: interrupted`` and
    130. Run as the program (``argv`` is ``None``), a Ctrl-C after the command has finished is
    ignored: the exit code stays the command's instead of the silent -SIGINT death the
    interpreter's shutdown would give.
    """
    args = _build_parser().parse_args(argv)
    # INFO records are always made (a run's text log keeps them); -q quiets only the terminal.
    stderr = logging.StreamHandler()
    stderr.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    stderr.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    logging.basicConfig(level=logging.INFO, handlers=[stderr])
    run: Callable[[argparse.Namespace], int] = _COMMANDS[args.command].run
    name = " ".join([args.command, *(getattr(args, f"{args.command}_command", None) or "").split()])
    try:
        return run(args)
    except SuperresError as exc:
        print(f"superres {name}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BAD_VALUE) else 1
    except OSError as exc:  # the machine's refusal (disk full, no permission) the command met
        print(f"superres {name}: error: {exc}", file=sys.stderr)
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
