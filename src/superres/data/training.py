"""Training data: random aligned LR/HR patches from HR folders (or paired folders), seeded.

How a training pair is made (:class:`TrainDataset`), for each HR image:

1. decode it (PNG, JPEG, BMP, TIFF, ...; gray is replicated to RGB), mod-crop it to a multiple of
   ``scale``; an image smaller than ``gt_size`` is reflect-padded first, or skipped (logged);
2. make its LR image with the benchmark's MATLAB-exact bicubic of the *whole* mod-cropped image
   (:func:`superres.data.datasets.bicubic_downscale`), so training LR and test LR agree pixel for
   pixel; with ``cache="memory"`` this is done once, in the constructor, and both images are kept
   as ``uint8`` (an epoch then costs only crops);
3. per item: a random aligned crop, a random flip/rotation, optionally the BT.601 Y channel.

Determinism. Item ``index`` of epoch ``epoch`` is a pure function of ``(seed, epoch, index)``; the
visiting order comes from :class:`~superres.data.sampling.ResumableSampler`, a pure function of
``(seed, epoch)`` (see :mod:`superres.data.sampling`, where the sampler and the loader live).

Typical loop (the loader built by :func:`build_train_loader` hands the sampler's epoch to the
dataset, in every worker, at the start of each pass)::

    dataset = TrainDataset(roots=[root / "T91/HR"], scale=4, gt_size=96, repeat=20, seed=0)
    sampler = ResumableSampler(len(dataset), seed=0, rank=rank, world_size=world_size)
    loader = build_train_loader(dataset, sampler, batch_size=16, num_workers=4, pin_memory=True)
    sampler.load_state_dict(state["sampler"])            # when resuming
    for epoch in range(sampler.epoch, num_epochs):
        sampler.set_epoch(epoch)                         # keeps the position if epoch is unchanged
        for i, batch in enumerate(loader):
            ...
            sampler.set_position(start + (i + 1) * batch_size)   # before saving a checkpoint

Calling ``dataset.set_epoch(epoch)`` as well is harmless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset

from superres.data.catalog import IMAGE_EXTENSIONS, list_image_files
from superres.data.datasets import bicubic_downscale, cached_bicubic_downscale, mod_crop
from superres.data.sampling import (
    Batch,
    ResumableSampler,
    build_train_loader,
    holdout_split,
    mix_seed,
)
from superres.data.transforms import augment, pad_to_min_size, paired_random_crop
from superres.errors import (
    DatasetNotFoundError,
    ImageTooSmallError,
    SuperresError,
    UnsupportedScaleError,
    check_positive,
)
from superres.imaging.color import rgb_to_y
from superres.imaging.quantize import to_integer
from superres.io.image import read_image

# The sampler and the loader live in superres.data.sampling; they stay importable from here.
__all__ = [
    "PairedDataset",
    "PairingError",
    "PatchDataset",
    "ResumableSampler",
    "TrainDataset",
    "build_train_loader",
    "holdout_split",
    "mix_seed",
]

logger = logging.getLogger(__name__)

Channels = Literal["rgb", "y"]

#: How many file names an error or warning lists before it says "and N more".
_MAX_LISTED = 10


class PairingError(SuperresError, ValueError):
    """LR and HR folders do not pair up: a file without a partner, or sizes that disagree."""


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _check_crop_args(scale: object, gt_size: object, channels: object) -> tuple[int, int]:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UnsupportedScaleError(f"scale must be a positive integer, got {scale!r}")
    gt = check_positive("gt_size", gt_size)
    if gt % scale:
        raise ValueError(
            f"gt_size must be a multiple of scale {scale}, got {gt}; use e.g. "
            f"{max(scale, gt - gt % scale)}"
        )
    if channels not in ("rgb", "y"):
        raise ValueError(f"channels must be 'rgb' or 'y', got {channels!r}")
    return scale, gt


def _image_folder(folder: str | os.PathLike[str], what: str) -> list[Path]:
    """The image files of ``folder``; a missing, non-folder or image-less path is an error."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(
            f"{what} folder {str(path)!r} does not exist; check the path (or the data root "
            "it is relative to)"
        )
    if not path.is_dir():
        raise DatasetNotFoundError(f"{what} {str(path)!r} is a file, expected a folder of images")
    files = list_image_files(path)
    if not files:
        raise DatasetNotFoundError(
            f"{what} folder {str(path)!r} holds no images (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)} files directly inside it, not in sub-folders)"
        )
    return files


def _read_rgb8(path: Path) -> torch.Tensor:
    """Decode ``path`` to ``uint8`` ``(3, H, W)`` RGB (deeper sources are rounded to 8 bits)."""
    decoded = read_image(path)
    if decoded.bit_depth != 8:
        logger.debug("%s: %d-bit image rounded to 8 bits for training", path, decoded.bit_depth)
    return to_integer(decoded.rgb)


def _image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from the file header when Pillow can read it, else by decoding the image.

    EXIF orientation may swap H and W; callers only compare ``min(H, W)``, which it keeps.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            return h, w
    except (OSError, UnidentifiedImageError):
        rgb = read_image(path).rgb
        return int(rgb.shape[-2]), int(rgb.shape[-1])


class PatchDataset(Dataset[Batch]):
    """Shared item logic: aligned crop, flip/rotation, optional Y, seeded per (seed, epoch, index).

    Subclasses fill ``_num_images`` and ``_pair(i)`` (``uint8`` LR ``(3, h, w)`` and HR
    ``(3, h*scale, w*scale)``).
    """

    scale: int
    gt_size: int
    channels: Channels
    hflip: bool
    rot90: bool
    repeat: int
    seed: int
    epoch: int
    _num_images: int

    def _pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and flips ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._num_images * self.repeat

    def __getitem__(self, index: int) -> Batch:
        """Item ``index`` of the current epoch: ``{"lq": (C, h, w), "gt": (C, H, W)}``.

        float32 in [0, 1]; ``C`` is 3 (RGB) or 1 (Y, in [16/255, 235/255]); ``h = gt_size //
        scale``, ``H = gt_size``. Image ``index % num_images`` is used, so with ``repeat > 1``
        each image appears ``repeat`` times per epoch, each time with its own crop.
        """
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index %= n
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, index))
        lq8, gt8 = self._pair(index % self._num_images)
        lq_patch, gt_patch = paired_random_crop(
            lq8, gt8, gt_size=self.gt_size, scale=self.scale, generator=generator
        )
        lq = lq_patch.to(torch.float32) / 255.0
        gt = gt_patch.to(torch.float32) / 255.0
        if self.channels == "y":
            lq, gt = rgb_to_y(lq), rgb_to_y(gt)
        lq, gt = augment([lq, gt], hflip=self.hflip, rot90=self.rot90, generator=generator)
        return {"lq": lq.contiguous(), "gt": gt.contiguous()}


class TrainDataset(PatchDataset):
    """Random aligned patches from folders of HR images; LR by MATLAB-exact bicubic.

    Args:
        roots: folders of HR images (their image files, not sub-folders); several are mixed.
        scale: integer downscaling factor.
        gt_size: side of the HR patch, a multiple of ``scale``; the LR patch is
            ``gt_size // scale``.
        channels: ``"rgb"`` (3 channels) or ``"y"`` (the BT.601 luma, 1 channel, as SRCNN).
            Y is computed from the RGB patches after the RGB bicubic, as the evaluation does.
        hflip: random horizontal flips.
        rot90: random vertical flips and transposes (rotations by multiples of 90 degrees).
        small_images: an HR image smaller than ``gt_size`` on a side is ``"pad"``-ded at the
            bottom/right by reflection before its LR image is made, or ``"skip"``-ped. Both are
            logged with a count.
        cache: ``"memory"`` decodes every image and computes its LR image once, here (``uint8``,
            ``1 + 1/scale**2`` bytes per HR value); ``"none"`` decodes and downscales the whole
            image at every item (for sets too large for memory; much slower).
        repeat: each image is visited this many times per epoch (small sets such as T91).
        seed: base seed of the crops and flips.
        files: more HR image files, added to those found in ``roots`` (e.g. the training part of
            :func:`holdout_split`; ``roots`` may then be empty). Duplicates are used once.

    Attributes:
        files: the HR files in use, in item order (``index % len(files)``).
        skipped: the HR files skipped for being too small.
        padded: the HR files that were padded.

    Raises:
        DatasetNotFoundError: a root is missing, not a folder or has no images; no image at all.
        UnsupportedScaleError, ValueError: bad arguments.
        ImageReadError: an image cannot be decoded (with ``cache="memory"``, here).
    """

    def __init__(
        self,
        *,
        roots: Sequence[str | os.PathLike[str]],
        scale: int,
        gt_size: int,
        channels: Channels = "rgb",
        hflip: bool = True,
        rot90: bool = True,
        small_images: Literal["pad", "skip"] = "pad",
        cache: Literal["memory", "none"] = "memory",
        repeat: int = 1,
        seed: int = 0,
        files: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        self.scale, self.gt_size = _check_crop_args(scale, gt_size, channels)
        if small_images not in ("pad", "skip"):
            raise ValueError(f"small_images must be 'pad' or 'skip', got {small_images!r}")
        if cache not in ("memory", "none"):
            raise ValueError(f"cache must be 'memory' or 'none', got {cache!r}")
        if isinstance(roots, str | os.PathLike):
            raise TypeError(f"roots must be a list of folders, got the single path {roots!r}")
        self.channels = channels
        self.hflip, self.rot90 = bool(hflip), bool(rot90)
        self.small_images = small_images
        self.cache = cache
        self.repeat = check_positive("repeat", repeat)
        self.seed = int(seed)
        self.epoch = 0

        candidates: list[Path] = []
        for root in roots:
            candidates.extend(_image_folder(root, "HR image"))
        for f in files or ():
            p = Path(f).expanduser()
            if not p.is_file():
                raise DatasetNotFoundError(f"HR image file {str(p)!r} does not exist")
            candidates.append(p)
        unique: dict[Path, Path] = {}
        for p in candidates:
            unique.setdefault(p.resolve(), p)
        if not unique:
            raise DatasetNotFoundError(
                "TrainDataset got no HR images: give roots=[folder, ...] and/or files=[...]"
            )

        self.files: list[Path] = []
        self.skipped: list[Path] = []
        self.padded: list[Path] = []
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        for path in unique.values():
            if cache == "memory":
                hr = _read_rgb8(path)
                h, w = int(hr.shape[-2]), int(hr.shape[-1])
            else:
                hr = None
                h, w = _image_size(path)
            if min(h, w) < self.gt_size:
                if small_images == "skip":
                    self.skipped.append(path)
                    continue
                self.padded.append(path)
            self.files.append(path)
            if hr is not None:
                self._cache.append(self._make_pair(hr, path))
        self._report(len(unique))
        self._num_images = len(self.files)

    def _report(self, total: int) -> None:
        if self.skipped:
            logger.warning(
                "skipped %d of %d HR images smaller than gt_size=%d: %s",
                len(self.skipped),
                total,
                self.gt_size,
                _listing([p.name for p in self.skipped]),
            )
        if self.padded:
            logger.warning(
                "reflect-padded %d of %d HR images smaller than gt_size=%d: %s",
                len(self.padded),
                total,
                self.gt_size,
                _listing([p.name for p in self.padded]),
            )
        if not self.files:
            raise DatasetNotFoundError(
                f"all {total} HR images are smaller than gt_size={self.gt_size} and were "
                "skipped; use small_images='pad' or a smaller gt_size"
            )
        logger.info(
            "training set: %d HR images (x%d, %d-pixel patches, repeat %d) -> %d items per epoch",
            len(self.files),
            self.scale,
            self.gt_size,
            self.repeat,
            len(self.files) * self.repeat,
        )

    def _make_pair(self, hr8: torch.Tensor, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """``uint8`` HR -> (``uint8`` LR, ``uint8`` mod-cropped (and maybe padded) HR).

        The LR of an unpadded image comes from the on-disk LR cache (the exact resize is slow);
        padded images are resized afresh.
        """
        hr = hr8.to(torch.float32) / 255.0
        padded = min(hr.shape[-2:]) < self.gt_size
        if padded:
            hr = pad_to_min_size(hr, self.gt_size, mode="reflect")
        hr = mod_crop(hr, self.scale)
        if padded or hr8.shape[0] != 3:
            lq = bicubic_downscale(hr, self.scale)
        else:
            lq = cached_bicubic_downscale(path, hr, self.scale, bucket="train")
        return to_integer(lq), to_integer(hr)

    def _pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache:
            return self._cache[i]
        return self._make_pair(_read_rgb8(self.files[i]), self.files[i])


class PairedDataset(PatchDataset):
    """Random aligned patches from a folder of LR images and a folder of their HR images.

    Files pair up by stem: ``gt_root/0001.png`` with ``lq_root/0001.*`` or ``lq_root/0001x4.*``
    (the DIV2K naming). Every image is decoded once and kept in memory as ``uint8``.

    Args:
        lq_root, gt_root: the two folders.
        scale: every HR image must be exactly ``scale`` times its LR image.
        gt_size, channels, hflip, rot90, seed, repeat: as in :class:`TrainDataset`.

    Raises:
        PairingError: a file has no partner (all of them are listed), or sizes disagree.
        ImageTooSmallError: an HR image is smaller than ``gt_size``.
        DatasetNotFoundError: a folder is missing, not a folder or has no images.
    """

    def __init__(
        self,
        *,
        lq_root: str | os.PathLike[str],
        gt_root: str | os.PathLike[str],
        scale: int,
        gt_size: int,
        channels: Channels = "rgb",
        hflip: bool = True,
        rot90: bool = True,
        seed: int = 0,
        repeat: int = 1,
    ) -> None:
        self.scale, self.gt_size = _check_crop_args(scale, gt_size, channels)
        self.channels = channels
        self.hflip, self.rot90 = bool(hflip), bool(rot90)
        self.repeat = check_positive("repeat", repeat)
        self.seed = int(seed)
        self.epoch = 0
        gt_files = _image_folder(gt_root, "HR (gt_root)")
        lq_files = _image_folder(lq_root, "LR (lq_root)")
        lq_by_stem: dict[str, Path] = {}
        for p in lq_files:
            stem = p.stem
            if stem.endswith(f"x{scale}") and stem[: -len(f"x{scale}")]:
                lq_by_stem.setdefault(stem[: -len(f"x{scale}")], p)
            lq_by_stem.setdefault(stem, p)
        self.pairs: list[tuple[Path, Path]] = []
        missing: list[str] = []
        for g in gt_files:
            lq = lq_by_stem.get(g.stem)
            if lq is None:
                missing.append(g.name)
            else:
                self.pairs.append((lq, g))
        used = {lq for lq, _ in self.pairs}
        orphans = [p.name for p in lq_files if p not in used]
        if missing or orphans:
            parts = []
            if missing:
                parts.append(
                    f"{len(missing)} HR image(s) in {str(gt_root)!r} have no LR partner in "
                    f"{str(lq_root)!r}: {_listing(missing)}"
                )
            if orphans:
                parts.append(
                    f"{len(orphans)} LR image(s) in {str(lq_root)!r} have no HR partner: "
                    f"{_listing(orphans)}"
                )
            raise PairingError(
                "; ".join(parts) + f". Files pair by stem (HR NAME.png with LR NAME.* or "
                f"NAMEx{scale}.*); remove or rename the unpaired files"
            )
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        for lq_path, gt_path in self.pairs:
            lq8, gt8 = _read_rgb8(lq_path), _read_rgb8(gt_path)
            expected = (int(lq8.shape[-2]) * scale, int(lq8.shape[-1]) * scale)
            if tuple(gt8.shape[-2:]) != expected:
                raise PairingError(
                    f"HR {gt_path.name} is {gt8.shape[-2]}x{gt8.shape[-1]} but its LR "
                    f"{lq_path.name} is {lq8.shape[-2]}x{lq8.shape[-1]}; at x{scale} the HR must "
                    f"be {expected[0]}x{expected[1]} (mod-crop the HR, or check --scale)"
                )
            if min(expected) < self.gt_size:
                raise ImageTooSmallError(
                    f"HR {gt_path} is {expected[0]}x{expected[1]}, smaller than gt_size="
                    f"{self.gt_size}; use a smaller gt_size or remove the image"
                )
            self._cache.append((lq8, gt8))
        self._num_images = len(self._cache)

    def _pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._cache[i]
