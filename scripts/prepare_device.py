"""Prepare a lent GPU machine's sitting: the data it needs in ``.device/`` (git-ignored), and the
LR cache warmed in parallel once there.

Only the working tree travels to such a machine, 64 MiB in all, so this copies just what the zoo
sitting (scripts/train_zoo.py) reads: the training sets (T91, BSD200), Set5 (validation), the
test sets ``--test-sets`` names (Set14, 5 MB, by default; BSD100, 28 MB, does not fit beside the
repo; Urban100, 130 MB, never), the ImageNet SqueezeNet trunk of the perceptual loss and LPIPS,
the LPIPS heads and the NIQE parameters. It prints what would travel against the limit.

    python scripts/prepare_device.py --data-root ../shared/data              # here
    python scripts/prepare_device.py --warm-cache --data-root .device/data   # there, first

``--warm-cache`` makes the MATLAB-exact LR images of every training and benchmark image at x2 and
x4 with one process per core (about a second per image each; the runs then find them cached).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What travels: folders and files under the data root.
NEEDED = (
    "T91/HR",
    "BSD200/HR",
    "Set5/HR",
    "Set5/LR_bicubic_x4",
    "weights/squeezenet1_1_imagenet_features.safetensors",
    "weights/lpips/v0.1/squeeze.pth",
    "niqe/niqe_pris_params.npz",
)
TEST_SETS = {
    "set14": ("Set14/HR", "Set14/LR_bicubic_x4"),
    "bsd100": ("BSD100/HR", "BSD100/LR_bicubic_x4"),
}
LIMIT = 64 * 2**20


def tree_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


def tracked_bytes(skip: tuple[str, ...]) -> int:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = [REPO / n.decode() for n in names if n and not n.decode().startswith(skip)]
    return tree_bytes([f for f in files if f.is_file()])


def copy_data(source: Path, dest: Path, test_sets: list[str]) -> None:
    wanted = list(NEEDED) + [p for s in test_sets for p in TEST_SETS[s]]
    for rel in wanted:
        src, dst = source / rel, dest / rel
        if not src.exists():
            raise SystemExit(f"{src} is missing: give the data root that holds it (--data-root)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def _warm_one(task: tuple[str, int, str]) -> str:
    from superres.data.datasets import cached_bicubic_downscale, mod_crop
    from superres.imaging.quantize import to_integer
    from superres.io.image import read_image

    path, scale, bucket = task
    hr = mod_crop(read_image(Path(path)).rgb, scale)
    to_integer(cached_bicubic_downscale(Path(path), hr, scale, bucket=bucket))
    return path


def warm_cache(data_root: Path) -> None:
    """The LR cache of every training (bucket ``train``) and benchmark image at x2 and x4."""
    from superres.data.catalog import list_image_files
    from superres.data.datasets import BenchmarkSet
    from superres.errors import SuperresError

    tasks = [
        (str(p), scale, "train")
        for folder in ("T91/HR", "BSD200/HR")
        for p in list_image_files(data_root / folder)
        for scale in (2, 4)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        for done, _ in enumerate(pool.map(_warm_one, tasks, chunksize=4), 1):
            if done % 100 == 0:
                print(f"  {done}/{len(tasks)} training LR images", flush=True)
    for name in ("set5", "set14", "bsd100"):
        for scale in (2, 4):
            try:
                list(BenchmarkSet(name, scale, root=data_root))  # generates and caches the rest
            except SuperresError:  # a set that did not travel is skipped
                print(f"  {name} x{scale}: not under {data_root}, skipped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None, help="default: SUPERRES_DATA")
    parser.add_argument("--dest", type=Path, default=REPO / ".device")
    parser.add_argument("--test-sets", nargs="*", default=["set14"], choices=list(TEST_SETS))
    parser.add_argument("--warm-cache", action="store_true", help="(there) fill the LR cache")
    args = parser.parse_args(argv)
    root = args.data_root or Path(os.environ.get("SUPERRES_DATA", REPO.parent / "shared/data"))
    if args.warm_cache:
        warm_cache(root)
        return 0
    copy_data(root, args.dest / "data", args.test_sets)
    data = tree_bytes([args.dest])
    repo = tracked_bytes(())
    without_docs = tracked_bytes(("docs/",))
    print(
        f".device: {data / 2**20:.1f} MiB; tracked files {repo / 2**20:.1f} MiB "
        f"({without_docs / 2**20:.1f} MiB without docs/); the limit is {LIMIT / 2**20:.0f} MiB"
    )
    if repo + data > LIMIT:
        print(
            "too large with docs/: move docs/ out of the checkout for the call "
            "(mv docs ../docs.away), and back afterwards"
        )
    if without_docs + data > LIMIT:
        print("too large even without docs/: name fewer --test-sets")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
