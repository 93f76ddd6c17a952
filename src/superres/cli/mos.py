"""``superres mos ...``: mean opinion score studies (create, serve, results)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from superres.cli.common import (
    CommandText,
    add_allow_modified,
    add_command,
    add_data_root,
    add_datasets_arg,
    add_device,
    add_quiet,
    positive_int,
)
from superres.errors import SuperresError

logger = logging.getLogger("superres")


TEXT = CommandText(
    help="blind mean-opinion-score study: create it, serve it to raters, compute the MOS",
    description="""A rating study in the SRGAN paper's protocol: every dataset image in every
    model's version plus the HR original and bicubic, rated 1 (bad) to 5 (excellent) by raters
    who never see which method made an image.""",
)


def add_arguments(mos: argparse.ArgumentParser) -> None:
    """``create``, ``serve`` and ``results``."""
    actions = mos.add_subparsers(dest="mos_command", required=True, metavar="MOS_COMMAND")
    _add_create(actions)
    _add_serve(actions)
    _add_results(actions)


_CREATE = CommandText(
    help="render a dataset with every model (+ HR and bicubic) into a new study file",
    description="""Render every image of DATASET with every model, plus the HR original and
    bicubic, and store them as PNG inside the new SQLite study file --out, with tables for raters
    and ratings. An existing file is never overwritten; the file appears only when complete.""",
)

_SERVE = CommandText(
    help="serve the rating page for a study (FastAPI + uvicorn; pip install 'superres[mos]')",
    description="""Serve the rating page: a rater enters a name (or gets an id) and rates one image
    at a time with the keys 1-5. Ratings are saved as they are given; the same name resumes where
    it stopped.""",
)

_RESULTS = CommandText(
    help="MOS per method with 95%% confidence intervals (table, CSV, JSON, plot)",
    description="""Print the MOS of every method with its 95% Student-t confidence interval and
    the numbers of ratings and raters, and write mos.md, mos.csv, mos.json and mos.png into
    --out.""",
)


def _add_create(actions: argparse._SubParsersAction) -> None:
    cr = add_command(actions, "create", _CREATE)
    cr.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="NAME",
        help="pretrained model names of one scale, e.g. edsr-baseline-x4 srgan-x4 (bicubic and "
        "the HR original are always included)",
    )
    add_datasets_arg(cr, "catalog name, e.g. set5, set14 or bsd100", many=False)
    cr.add_argument(
        "--out",
        type=Path,
        required=True,
        help="study file to create, e.g. study.db (must not exist)",
    )
    add_data_root(cr)
    add_allow_modified(cr)
    cr.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="use only the first N images (sorted by name)",
    )
    cr.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the opaque item ids and (with each rater id) of the rating orders "
        "(default: random, stored in the study)",
    )
    add_device(cr)


def _add_study_command(
    actions: argparse._SubParsersAction, name: str, text: CommandText
) -> argparse.ArgumentParser:
    """A sub-command that works on an existing study file, its first argument."""
    parser = add_command(actions, name, text)
    parser.add_argument("study", type=Path, metavar="STUDY", help="study file from `mos create`")
    return parser


def _add_serve(actions: argparse._SubParsersAction) -> None:
    sv = _add_study_command(actions, "serve", _SERVE)
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for a lab "
        "network, without passwords)",
    )
    sv.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    add_quiet(sv, "no request log")


def _add_results(actions: argparse._SubParsersAction) -> None:
    rs = _add_study_command(actions, "results", _RESULTS)
    rs.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for mos.md/csv/json/png, created if missing (default: STUDY_results beside "
        "the study file)",
    )
    add_quiet(rs)


def run(args: argparse.Namespace) -> int:
    """Run the ``mos`` sub-command."""
    actions = {"create": _create, "serve": _serve, "results": _results}
    return actions[args.mos_command](args)


# superres.mos is imported by the sub-commands that use it: its statistics import SciPy, a second
# at start-up that every other command would pay.


def _create(args: argparse.Namespace) -> int:
    from superres.mos import create_study

    info = create_study(
        args.out,
        args.models,
        args.dataset,
        root=args.data_root,
        limit=args.limit,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        allow_modified=args.allow_modified,
    )
    print(
        f"created {info.path}: {len(info.images)} images x {len(info.methods)} methods "
        f"({', '.join(info.methods)}) = {info.num_items} items; serve it with "
        f"`superres mos serve {info.path}`"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from superres.mos.server import serve
    except ImportError as exc:
        raise SuperresError(
            f"`superres mos serve` needs FastAPI and uvicorn ({exc}); install them with "
            "pip install 'superres[mos]'"
        ) from exc
    serve(args.study, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def _results(args: argparse.Namespace) -> int:
    from superres.mos import compute_results, format_markdown, write_results

    results = compute_results(args.study)
    sys.stdout.write(format_markdown(results))
    out = args.out if args.out is not None else args.study.with_name(f"{args.study.stem}_results")
    for path in write_results(results, out):
        logger.info("wrote %s", path)
    return 0
