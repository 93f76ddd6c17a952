"""``superres data ...``: dataset preparation (extract-subimages) and the data root (get, list,
verify)."""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from superres.cli.common import CommandText, add_command, add_quiet
from superres.data.prepare import extract_subimages
from superres.data.sources import DataSource, get_source, list_sources
from superres.data.store import all_statuses, get_dataset, verify_dataset
from superres.io.files import resolve_data_root

logger = logging.getLogger("superres")

#: extract-subimages' integer options: each flag is a keyword of ``extract_subimages`` and takes
#: its default from there.
_OPTIONS = {
    "crop_size": "sub-image side",
    "step": "distance between crops",
    "thresh_size": "add a border-aligned last crop when more than this many pixels remain",
    "workers": "images done in parallel",
    "compression": "PNG zlib level 0-9",
}
_DEFAULTS = inspect.signature(extract_subimages).parameters


TEXT = CommandText(help="get, list and verify datasets; prepare them (extract-subimages)")

_EXTRACT = CommandText(
    help="cut large images into overlapping square PNG sub-images (as for DIV2K)",
    description="""Cut every image of INPUT into overlapping CROP_SIZE squares written to OUTPUT as
    STEM_s001.png, STEM_s002.png, ... (BasicSR's extract_subimages). Files are written atomically
    and existing ones are skipped, so a rerun continues a stopped run; OUTPUT/subimages.json
    records the options and images, and a rerun with other options or changed images is refused
    unless --overwrite is given.""",
)


def add_arguments(data: argparse.ArgumentParser) -> None:
    """``extract-subimages`` and its options, each a keyword of ``extract_subimages``."""
    actions = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    ex = add_command(actions, "extract-subimages", _EXTRACT)
    ex.add_argument("input", type=Path, metavar="INPUT", help="folder of images")
    ex.add_argument("output", type=Path, metavar="OUTPUT", help="output folder (created)")
    for keyword, text in _OPTIONS.items():
        default = _DEFAULTS[keyword].default
        ex.add_argument(
            "--" + keyword.replace("_", "-"),
            type=int,
            default=default,
            help=f"{text} (default: {default})",
        )
    ex.add_argument(
        "--overwrite",
        action="store_true",
        help="delete sub-images cut earlier with other options or from changed images "
        "(OUTPUT/subimages.json records them) and cut again",
    )
    add_quiet(ex)
    _add_store_commands(actions)


def run(args: argparse.Namespace) -> int:
    """Run the ``data`` sub-command."""
    if args.data_command in _STORE_COMMANDS:
        return _STORE_COMMANDS[args.data_command](args)
    written = extract_subimages(
        args.input,
        args.output,
        overwrite=args.overwrite,
        **{keyword: getattr(args, keyword) for keyword in _OPTIONS},
    )
    logger.info("wrote %d sub-image(s) to %s", written, args.output)
    return 0


_GET = CommandText(
    help="download (or import with --from) datasets into the data root, verified",
    description="""Download each NAME's archives (resumed and retried; checked against the
    published checksum before extraction), extract them safely and move them into place, or import
    a copy you already have with --from (a folder such as a data root, or an archive), verified
    before it is placed. A set's terms are shown before its first download.""",
)
_LIST = CommandText(help="every known dataset: present or not, where, image count, size on disk")
_VERIFY = CommandText(
    help="check a dataset on disk: image count, names and (where pinned) every file's sha256"
)


def _add_store_commands(actions: argparse._SubParsersAction) -> None:
    """``get``, ``list`` and ``verify``."""
    names = ", ".join(list_sources())
    get = add_command(actions, "get", _GET)
    get.add_argument("names", nargs="+", metavar="NAME", help=f"datasets: {names}")
    get.add_argument("--root", type=Path, default=None, help="data root (default: $SUPERRES_DATA)")
    get.add_argument(
        "--from",
        dest="from_path",
        type=Path,
        default=None,
        metavar="DIR_OR_ARCHIVE",
        help="import this copy (a data root, the set's folder, or an archive) instead of "
        "downloading",
    )
    get.add_argument("--yes", action="store_true", help="accept the sets' terms without asking")
    add_quiet(get)
    lst = add_command(actions, "list", _LIST)
    lst.add_argument("--root", type=Path, default=None, help="data root (default: $SUPERRES_DATA)")
    ver = add_command(actions, "verify", _VERIFY)
    ver.add_argument("names", nargs="+", metavar="NAME", help="datasets to check")
    ver.add_argument("--root", type=Path, default=None, help="data root (default: $SUPERRES_DATA)")


def _ask_terms(assume_yes: bool) -> Callable[[DataSource], bool]:
    def accept(source: DataSource) -> bool:
        print(f"{source.name}: {source.terms}", file=sys.stderr)
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            return False
        return input("Accept these terms and download? [y/N] ").strip().lower() in ("y", "yes")

    return accept


def _run_get(args: argparse.Namespace) -> int:
    for name in args.names:
        get_source(name)  # every name checked before anything is downloaded
    for name in args.names:
        for report in get_dataset(
            name,
            args.root,
            from_path=args.from_path,
            accept_terms=_ask_terms(args.yes),
            progress=not args.quiet,
        ):
            print(f"{report.name:24s} {report.folder}  {report.describe()}")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    print(f"data root: {resolve_data_root(args.root)}")
    for status in all_statuses(args.root):
        state = f"{status.images}/{status.expected} images" if status.present else "missing"
        size = f"{status.size / 2**20:.1f} MiB" if status.present else "-"
        print(f"{status.name:24s} {state:18s} {size:>11s}  {status.image_dir}")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.names:
        report = verify_dataset(name, args.root)
        print(f"{report.name:24s} {'OK' if report.ok else 'DIFFERS'}  {report.describe()}")
        failed += not report.ok
    return 1 if failed else 0


_STORE_COMMANDS = {"get": _run_get, "list": _run_list, "verify": _run_verify}
