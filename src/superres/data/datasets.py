"""Benchmark sets as (HR, LR) pairs, prepared exactly as the field's evaluation protocol says.

HR images are mod-cropped (top-left crop to a multiple of the scale); the LR image is the official
file when the dataset ships one, else MATLAB-exact bicubic downscaling of the mod-cropped HR
computed on 8-bit values (rounded after each pass, as MATLAB's ``imresize`` on ``uint8``),
cached on disk.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import torch

from superres.data.catalog import benchmark_hr_files, get_dataset_info, official_lr_path
from superres.errors import (
    ImageReadError,
    ImageTooSmallError,
    InvalidImageError,
    UnsupportedScaleError,
)
from superres.imaging.quantize import to_integer
from superres.imaging.resize import imresize
from superres.io.files import atomic_write_text, user_cache_dir
from superres.io.image import read_image, write_image

logger = logging.getLogger(__name__)

LRSource = Literal["auto", "official", "generated"]

#: Bumped whenever LR generation changes, so stale cached LR files are never reused.
_LR_CACHE_VERSION = "matlab-bicubic-v1"
#: The same for the real-world sets' degraded LR (:func:`degraded_lr`).
_REAL_LR_CACHE_VERSION = "realesrgan-v1"

#: The protocol's SSIM window side (``superres.metrics.fidelity.SSIM_WINDOW_SIZE``; a test keeps
#: the two equal): a scored HR image must keep that many pixels once ``scale`` px are cropped
#: from every border.
_SCORED_WINDOW = 11


def min_hr_side(scale: int) -> int:
    """The smallest HR side the protocol scores at ``scale``: a multiple of ``scale`` that keeps
    an 11x11 SSIM window after ``scale`` pixels are cropped from each border (20 at x4)."""
    return scale * math.ceil((2 * scale + _SCORED_WINDOW) / scale)


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop ``(..., H, W)`` at the bottom/right to ``H - H % scale`` by ``W - W % scale``."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The benchmark LR of ``hr``: MATLAB ``imresize(uint8(hr), 1/scale, 'bicubic')``.

    ``hr``: float32 ``(C, H, W)`` in [0, 1] on the 8-bit grid, with H and W multiples of ``scale``.
    Returns float32 ``(C, H/scale, W/scale)`` on the 8-bit grid.
    """
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise InvalidImageError(
            f"HR size {tuple(hr.shape[-2:])} is not a multiple of scale {scale}; mod_crop it first"
        )
    lq = imresize(to_integer(hr), scale=1.0 / scale)
    return lq.to(torch.float32) / 255.0


@dataclass(frozen=True)
class BenchmarkImage:
    """One evaluation pair.

    Attributes:
        name: file stem of the HR image.
        hr: float32 ``(3, H, W)`` in [0, 1], mod-cropped; gray sources are replicated to 3 channels.
        lq: float32 ``(3, H / scale, W / scale)`` in [0, 1].
        grayscale: the source file has one channel (e.g. Set14 ``bridge``).
        lq_source: ``"official"`` (the dataset's LR file) or ``"generated"``.
    """

    name: str
    hr: torch.Tensor
    lq: torch.Tensor
    grayscale: bool
    lq_source: str


class BenchmarkSet(Sequence[BenchmarkImage]):
    """The (HR, LR) pairs of a catalogued dataset at one scale.

    Args:
        name: catalog name (``"set5"``, ``"urban100"``, ...).
        scale: integer downscaling factor of the LR images.
        root: data root (see :func:`superres.data.catalog.resolve_data_root`).
        lq_source: ``"auto"`` uses official LR files where present and generates the rest;
            ``"official"`` requires them; ``"generated"`` ignores them.
        cache: cache generated LR images as PNG under ``<user cache>/lr`` (keyed by the HR file's
            content hash, so an edited HR never reuses a stale LR; see
            :func:`cached_bicubic_downscale`).
        allow_modified: accept an HR folder whose image count or names differ from the catalog's
            (``modified`` is then true, for the tables to say so); by default that is an error.

    Raises:
        UnknownDatasetError, DatasetNotFoundError, DatasetModifiedError: see
            :func:`~superres.data.catalog.benchmark_hr_files`; checked here, before any image
            is read.
        ImageTooSmallError: (on loading) an HR image smaller than :func:`min_hr_side`.
    """

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        root: str | os.PathLike[str] | None = None,
        lq_source: LRSource = "auto",
        cache: bool = True,
        allow_modified: bool = False,
    ) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise UnsupportedScaleError(f"scale must be a positive integer, got {scale!r}")
        if lq_source not in ("auto", "official", "generated"):
            raise ValueError(f"lq_source must be auto, official or generated, got {lq_source!r}")
        self.info = get_dataset_info(name)
        self.scale = scale
        self.lq_source = lq_source
        self.cache = cache
        check = benchmark_hr_files(name, root, allow_modified=allow_modified)
        self.files = list(check.files)
        #: the HR folder differs from the official release (only with ``allow_modified``)
        self.modified = check.modified

    def __len__(self) -> int:
        return len(self.files)

    @overload
    def __getitem__(self, index: int) -> BenchmarkImage: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[BenchmarkImage]: ...
    def __getitem__(self, index: int | slice) -> BenchmarkImage | Sequence[BenchmarkImage]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._load(self.files[index])

    def __iter__(self) -> Iterator[BenchmarkImage]:
        for path in self.files:
            yield self._load(path)

    def _load(self, hr_path: Path) -> BenchmarkImage:
        decoded = read_image(hr_path)
        if decoded.bit_depth != 8:
            raise InvalidImageError(
                f"{hr_path}: benchmark HR images must be 8-bit, got {decoded.bit_depth}-bit"
            )
        smallest = min_hr_side(self.scale)
        if min(decoded.rgb.shape[-2:]) < smallest:
            h, w = decoded.rgb.shape[-2:]
            raise ImageTooSmallError(
                f"{hr_path}: HR image is {h}x{w}, but x{self.scale} evaluation needs at least "
                f"{smallest}x{smallest} pixels (the {self.scale} px border and the "
                f"{_SCORED_WINDOW}x{_SCORED_WINDOW} SSIM window); remove or replace this file"
            )
        hr = mod_crop(decoded.rgb, self.scale)
        if self.info.degraded_from is not None:  # a real-world set: its LR is always generated
            lq = self._generated_lq(hr_path, hr)
            return BenchmarkImage(
                name=hr_path.stem, hr=hr, lq=lq, grayscale=decoded.grayscale, lq_source="generated"
            )
        official = None if self.lq_source == "generated" else official_lr_path(hr_path, self.scale)
        if official is not None:
            lq = read_image(official).rgb
            expected = (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale)
            if tuple(lq.shape[-2:]) != expected:
                raise InvalidImageError(
                    f"official LR {official} is {tuple(lq.shape[-2:])}, expected {expected} for "
                    f"x{self.scale} of the mod-cropped HR; remove it or use lq_source='generated'"
                )
            source = "official"
        elif self.lq_source == "official":
            raise InvalidImageError(
                f"no official x{self.scale} LR image for {hr_path} (looked in "
                f"LR_bicubic_x{self.scale}/ and LR_bicubic/X{self.scale}/); use lq_source='auto'"
            )
        else:
            lq = self._generated_lq(hr_path, hr)
            source = "generated"
        return BenchmarkImage(
            name=hr_path.stem, hr=hr, lq=lq, grayscale=decoded.grayscale, lq_source=source
        )

    def _generated_lq(self, hr_path: Path, hr: torch.Tensor) -> torch.Tensor:
        if self.info.degraded_from is None:
            if not self.cache:
                return bicubic_downscale(hr, self.scale)
            return cached_bicubic_downscale(hr_path, hr, self.scale, bucket=self.info.folder)
        key = f"{self.info.name}/{hr_path.stem}/x{self.scale}"
        if not self.cache:
            return degraded_lr(hr, self.scale, key=key)
        return _cached_lr(
            hr_path,
            lambda: degraded_lr(hr, self.scale, key=key),
            (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale),
            f"{_REAL_LR_CACHE_VERSION}/{self.info.name}/x{self.scale}",
        )


def degraded_lr(hr: torch.Tensor, scale: int, *, key: str) -> torch.Tensor:
    """The real-world benchmark LR of ``hr``: the Real-ESRGAN pipeline with its default
    parameters (:class:`~superres.data.degradations.DegradationConfig`), every random draw from a
    generator seeded by ``key`` (``"bsd100-real/101085/x4"``), so it is the same everywhere.

    ``hr``: float32 ``(3, H, W)`` in [0, 1], H and W multiples of ``scale``. Returns float32
    ``(3, H/scale, W/scale)`` on the 8-bit grid.
    """
    from superres.data.degradations import DegradationConfig, degrade

    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1
    generator = torch.Generator().manual_seed(seed)
    lq = degrade(hr[None].float(), scale=scale, config=DegradationConfig(), generator=generator)
    return lq[0].to(torch.float32)


def cached_bicubic_downscale(
    hr_path: Path, hr: torch.Tensor, scale: int, *, bucket: str
) -> torch.Tensor:
    """:func:`bicubic_downscale` of ``hr`` (the mod-cropped image of ``hr_path``), cached on disk.

    The exact MATLAB resize is slow (about a second per 0.15-megapixel image), so generated LR
    images are kept as PNG under ``<user cache>/lr/<version>/<bucket>/x<scale>/``, keyed by the HR
    file's content hash: an edited HR never reuses a stale LR. Each PNG has a ``.sha256`` sidecar
    holding the sha256 of its bytes, both written atomically; a cached file whose bytes do not
    match it (or that has none, cannot be decoded or has the wrong size) is logged and
    regenerated, never used. A cache that cannot be written is logged and skipped.
    """
    return _cached_lr(
        hr_path,
        lambda: bicubic_downscale(hr, scale),
        (hr.shape[-2] // scale, hr.shape[-1] // scale),
        f"{_LR_CACHE_VERSION}/{bucket}/x{scale}",
    )


def _cached_lr(
    hr_path: Path, make: Callable[[], torch.Tensor], expected: tuple[int, int], folder: str
) -> torch.Tensor:
    """``make()``, the LR image of ``hr_path``, cached as ``<user cache>/lr/<folder>/`` +
    ``<stem>-<HR hash>.png`` with its checksum sidecar (see :func:`cached_bicubic_downscale`)."""
    digest = hashlib.sha256(hr_path.read_bytes()).hexdigest()[:16]
    cached = user_cache_dir() / "lr" / folder / f"{hr_path.stem}-{digest}.png"
    lq = _read_cached_lr(cached, expected) if cached.is_file() else None
    if lq is not None:
        return lq
    lq = make()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_image(cached, lq)
        atomic_write_text(_checksum_path(cached), _sha256(cached) + "\n")
    except OSError as exc:  # a read-only cache must not stop the work
        logger.warning("could not cache LR image at %s: %s", cached, exc)
    return lq


def _checksum_path(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sha256")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_cached_lr(cached: Path, expected: tuple[int, int]) -> torch.Tensor | None:
    """The cached LR image, or ``None`` (logged) when it must be regenerated."""
    try:
        recorded = _checksum_path(cached).read_text(encoding="utf-8").strip()
        actual = _sha256(cached)
    except OSError as exc:  # no sidecar (a cache written before checksums), or unreadable
        logger.info("regenerating cached LR %s: cannot check it (%s)", cached, exc)
        return None
    if actual != recorded:
        logger.warning("regenerating cached LR %s: its sha256 does not match its record", cached)
        return None
    try:
        lq = read_image(cached).rgb
    except ImageReadError as exc:
        logger.warning("regenerating cached LR %s: %s", cached, exc)
        return None
    if tuple(lq.shape[-2:]) != expected:
        logger.warning("regenerating cached LR %s: wrong size", cached)
        return None
    return lq
