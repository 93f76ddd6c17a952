"""``superres data ...``: dataset preparation (extract-subimages)."""

from __future__ import annotations

import argparse
import inspect
import logging
from pathlib import Path

from superres.cli.common import CommandText, add_command, add_quiet
from superres.data.prepare import extract_subimages
from superres.errors import SuperresError

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


TEXT = CommandText(help="prepare datasets (extract-subimages)")

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


def run(args: argparse.Namespace) -> int:
    """Run the ``data`` sub-command (argparse allows only extract-subimages)."""
    try:
        written = extract_subimages(
            args.input,
            args.output,
            overwrite=args.overwrite,
            **{keyword: getattr(args, keyword) for keyword in _OPTIONS},
        )
    except ValueError as exc:  # bad option values: a usage error with the reason
        if isinstance(exc, SuperresError):
            raise
        raise SuperresError(f"extract-subimages: {exc}") from exc
    logger.info("wrote %d sub-image(s) to %s", written, args.output)
    return 0
