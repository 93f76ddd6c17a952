"""Published PSNR-Y rows (dB) to hold our models against: the rows DESIGN.md lists.

Keys: ``(paper row, scale)`` -> ``{dataset: psnr}``; a dataset the paper did not report is absent.
Rows: SRCNN (Dong et al., TPAMI 2016), SRResNet and SRGAN (Ledig et al., CVPR 2017), EDSR and its
baseline (Lim et al., CVPRW 2017), RRDBNet's PSNR-oriented model (Wang et al., ECCVW 2018).

:data:`BICUBIC` holds bicubic upscaling against both evaluation protocols (the tests and
``benchmarks/bicubic_protocols.py`` read it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PUBLISHED_PSNR: Mapping[tuple[str, int], Mapping[str, float]] = {
    ("SRCNN", 4): {"set5": 30.48, "set14": 27.50, "bsd100": 26.90, "urban100": 24.52},
    ("SRCNN", 2): {"set5": 36.66, "set14": 32.42, "bsd100": 31.36, "urban100": 29.50},
    ("SRResNet", 4): {"set5": 32.05, "set14": 28.49, "bsd100": 27.58},
    ("EDSR-baseline", 4): {"set5": 32.09, "set14": 28.58, "bsd100": 27.56, "urban100": 26.03},
    ("EDSR", 4): {"set5": 32.46, "set14": 28.80, "bsd100": 27.71, "urban100": 26.64},
    ("RRDBNet (PSNR)", 4): {"set5": 32.73, "set14": 28.99, "bsd100": 27.85, "urban100": 27.03},
    ("SRGAN", 4): {"set5": 29.40, "set14": 26.02, "bsd100": 25.16},
}

#: Our shipped model -> the published row it reproduces (or, for x2 SRResNet, the row it must beat).
COUNTERPART: Mapping[str, str] = {
    "srcnn-x4": "SRCNN",
    "srresnet-x4": "SRResNet",
    "srresnet-x2": "SRCNN",
    "edsr-baseline-x4": "EDSR-baseline",
    "rrdbnet-6b-x4": "RRDBNet (PSNR)",
    "srgan-x4": "SRGAN",
    "esrgan-6b-x4": "SRGAN",
}


def published_psnr(model: str, scale: int, dataset: str) -> tuple[str, float] | None:
    """``(row name, PSNR)`` of the published counterpart of ``model``, if one exists."""
    row = COUNTERPART.get(model)
    if row is None:
        return None
    value = PUBLISHED_PSNR.get((row, scale), {}).get(dataset)
    return None if value is None else (row, value)


@dataclass(frozen=True)
class PublishedScore:
    """A published figure to set beside one of our rows.

    Attributes:
        row: the paper row (``"SRResNet"``, ``"Bicubic"``).
        psnr_y: its PSNR-Y (dB).
        ssim_y: its SSIM-Y, where the source gives one.
    """

    row: str
    psnr_y: float
    ssim_y: float | None = None


#: The name of the papers' bicubic row (set beside ``bicubic`` under the legacy protocol).
BICUBIC_ROW = "Bicubic"


def published_score(model: str, scale: int, dataset: str, protocol: str) -> PublishedScore | None:
    """The published figure for our row ``model`` on ``dataset`` at ``scale``, if there is one.

    A shipped model gets its counterpart's PSNR (:data:`COUNTERPART`) under either protocol.
    ``bicubic`` gets the papers' bicubic row (PSNR and SSIM, :data:`BICUBIC`) under ``legacy``,
    the protocol that made it; under ``default`` there is none (the printed row is computed
    another way, see README "Evaluation protocols").
    """
    if model == "bicubic":
        found = BICUBIC.get((dataset, scale))
        if found is None or protocol != "legacy":
            return None
        return PublishedScore(BICUBIC_ROW, *found.legacy)
    ref = published_psnr(model, scale, dataset)
    return None if ref is None else PublishedScore(*ref)


@dataclass(frozen=True)
class BicubicRow:
    """Bicubic ``(PSNR-Y in dB, SSIM-Y)`` of one set at one scale, under each protocol.

    Attributes:
        default: today's default protocol (RGB bicubic, float Y, gray as three channels), from an
            independent implementation of it.
        legacy: the bicubic row the papers print (SRCNN/VDSR/EDSR tables, e.g. VDSR Table 3, EDSR
            Table 6), made by the legacy MATLAB scripts.
    """

    default: tuple[float, float]
    legacy: tuple[float, float]


#: ``(dataset, scale)`` -> :class:`BicubicRow`.
BICUBIC: Mapping[tuple[str, int], BicubicRow] = {
    ("set5", 4): BicubicRow(default=(28.4302, 0.81114), legacy=(28.42, 0.8104)),
    ("set14", 4): BicubicRow(default=(26.0914, 0.70480), legacy=(26.00, 0.7027)),
    ("bsd100", 4): BicubicRow(default=(25.9620, 0.66807), legacy=(25.96, 0.6675)),
    ("urban100", 4): BicubicRow(default=(23.1406, 0.65806), legacy=(23.14, 0.6577)),
    ("set5", 2): BicubicRow(default=(33.6741, 0.93029), legacy=(33.66, 0.9299)),
    ("set14", 2): BicubicRow(default=(30.3263, 0.86985), legacy=(30.24, 0.8688)),
    ("bsd100", 2): BicubicRow(default=(29.5605, 0.84340), legacy=(29.56, 0.8431)),
    ("urban100", 2): BicubicRow(default=(26.8766, 0.84047), legacy=(26.88, 0.8403)),
}


__all__ = [
    "BICUBIC",
    "BICUBIC_ROW",
    "COUNTERPART",
    "PUBLISHED_PSNR",
    "BicubicRow",
    "PublishedScore",
    "published_psnr",
    "published_score",
]
