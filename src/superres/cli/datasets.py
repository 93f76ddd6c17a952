"""``superres datasets``: the known datasets and whether they are present."""

from __future__ import annotations

import argparse

from superres.cli.common import CommandText, add_data_root
from superres.data.catalog import (
    get_dataset_info,
    list_datasets,
    list_image_files,
    resolve_data_root,
)

TEXT = CommandText(help="list the known datasets and whether they are present")


def add_arguments(ds: argparse.ArgumentParser) -> None:
    """Only where to look."""
    add_data_root(ds, "data root to look in")


def run(args: argparse.Namespace) -> int:
    """Print the data root, then one line per dataset with how many of its images are there."""
    root = resolve_data_root(args.data_root)
    print(f"data root: {root}")
    for name in list_datasets():
        info = get_dataset_info(name)
        hr = root / info.folder / "HR"
        found = len(list_image_files(hr)) if hr.is_dir() else 0
        state = f"{found}/{info.num_images} images" if found else "missing"
        print(f"{name:12s} {info.split:6s} {state:16s} {info.summary}")
    return 0
