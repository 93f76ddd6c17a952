"""``superres assets``: every pinned file, where it is, and getting it."""

from __future__ import annotations

import argparse

from superres.assets import (
    ASSETS,
    asset_path,
    asset_state,
    describe_size,
    get_asset,
    list_assets,
)
from superres.cli.common import CommandText, add_data_root
from superres.errors import UnknownAssetError

TEXT = CommandText(
    help="list the pinned files (weights, metric models) and download them",
    description="""Every file superres needs but does not compute: the zoo's weights, the ImageNet
    trunks, the LPIPS heads, the NIQE and Ma models. `list` shows where each one is (package, data
    root, download cache, torch's hub cache) and its sha256; `get` downloads missing ones, verified
    against that sha256. Nothing else downloads unless a command is given --download.""",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list`` (the default) and ``get``."""
    actions = parser.add_subparsers(dest="assets_command")
    listing = actions.add_parser("list", help="list the assets and where they are (default)")
    listing.add_argument("pattern", nargs="?", default=None, help="glob, e.g. 'lpips/*'")
    add_data_root(listing, "data root to look in")
    get = actions.add_parser("get", help="download assets that are not here")
    get.add_argument("names", nargs="+", metavar="NAME", help="asset names or globs")
    add_data_root(get, "data root to look in")
    get.add_argument("--quiet", action="store_true", help="no progress bar")


def _names(patterns: list[str]) -> list[str]:
    names: list[str] = []
    for pattern in patterns:
        matched = list_assets(pattern) if any(c in pattern for c in "*?[") else []
        if not matched:
            get_asset(pattern)  # an unknown name fails here, with close matches
            matched = [pattern.lower()]
        names.extend(n for n in matched if n not in names)
    if not names:
        raise UnknownAssetError(" ".join(patterns), ASSETS)
    return names


def run(args: argparse.Namespace) -> int:
    """List (default) or download."""
    if args.assets_command == "get":
        for name in _names(args.names):
            path = asset_path(
                name, data_root=args.data_root, download=True, progress=not args.quiet
            )
            print(f"{name}: {path}")
        return 0
    pattern = getattr(args, "pattern", None)
    data_root = getattr(args, "data_root", None)
    print("| asset | state | size | sha256 | where | needed by |")
    print("|---|---|---:|---|---|---|")
    for name in list_assets(pattern):
        asset = get_asset(name)
        state, path = asset_state(asset, data_root=data_root)
        sha = asset.sha256 or "not pinned (never downloaded)"
        where = str(path) if path is not None else "-"
        size = describe_size(asset.size) if asset.size is not None else "?"
        print(f"| {name} | {state} | {size} | {sha} | {where} | {asset.needed_by} |")
    return 0
