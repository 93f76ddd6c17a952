"""The one table of our metrics: what each one is, which way is better, how a table shows it.

As pyiqa's ``DEFAULT_CONFIGS``, one :class:`MetricSpec` per metric; ``superres metrics``, the
benchmark report and everything else that lists, orders, labels or rounds metrics reads it here.
A variant is an entry of its own: the report scores PSNR, SSIM, MS-SSIM and RMSE on BT.601 Y
only, as ``psnr_y`` and so on, entries made from the plain metric by :func:`_on_y`, so a fact
(direction, unit, kind) is written once for both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from superres.errors import UnknownNameError

__all__ = [
    "IMAGE_METRICS",
    "METRIC_TABLE",
    "REPORT_METRICS",
    "MetricSpec",
    "metric_spec",
]

#: LPIPS' pinned files: the linear heads and an ImageNet trunk (asset-name globs).
_LPIPS_FILES = ("lpips/v0.1/*", "imagenet/*")


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """One metric as the tables show it.

    Attributes:
        name: the key of its column and of the JSON documents (``"psnr"``, ``"psnr_y"``).
        kind: ``"FR"`` full-reference (an image and its reference) or ``"NR"`` no-reference.
        higher_better: ``True`` when a larger value is better.
        unit: unit or range in words, as ``superres metrics`` explains it (``"dB"``, ``"0-1"``).
        label: the short name a column title starts with (``"PSNR"``).
        digits: decimals of the benchmark report's tables.
        needs_assets: the pinned files (:mod:`superres.assets` names or globs) it needs; without
            them it is skipped with the reason, never scored.
        y_channel: scored on BT.601 Y only (the report's ``_y`` columns), not on RGB.
        unit_in_header: the column title names the unit (``"PSNR-Y (dB)"``).
    """

    name: str
    kind: Literal["FR", "NR"]
    higher_better: bool
    unit: str
    label: str
    digits: int = 4
    needs_assets: tuple[str, ...] = ()
    y_channel: bool = False
    unit_in_header: bool = False

    @property
    def header(self) -> str:
        """The column title: ``"SSIM"``, ``"SSIM-Y"``, ``"PSNR-Y (dB)"``."""
        title = f"{self.label}-Y" if self.y_channel else self.label
        return f"{title} ({self.unit})" if self.unit_in_header else title


def _on_y(spec: MetricSpec) -> MetricSpec:
    """The variant of a full-reference metric scored on BT.601 Y: ``psnr`` -> ``psnr_y``."""
    return dataclasses.replace(spec, name=f"{spec.name}_y", y_channel=True)


_MSE = MetricSpec(
    name="mse", kind="FR", higher_better=False, unit="0-255 scale", label="MSE", digits=2
)
_RMSE = dataclasses.replace(_MSE, name="rmse", label="RMSE")
_PSNR = MetricSpec(
    name="psnr", kind="FR", higher_better=True, unit="dB", label="PSNR", digits=2,
    unit_in_header=True,
)  # fmt: skip
_SSIM = MetricSpec(name="ssim", kind="FR", higher_better=True, unit="0-1", label="SSIM")
_MS_SSIM = dataclasses.replace(_SSIM, name="ms_ssim", label="MS-SSIM")

#: Every metric: first those of ``superres metrics``, in its column order, then the Y variants.
METRIC_TABLE: tuple[MetricSpec, ...] = (
    _MSE,
    _RMSE,
    _PSNR,
    _SSIM,
    _MS_SSIM,
    MetricSpec(
        name="lpips", kind="FR", higher_better=False, unit="distance, 0 = identical",
        label="LPIPS", needs_assets=_LPIPS_FILES,
    ),
    MetricSpec(
        name="niqe", kind="NR", higher_better=False, unit="lower is more natural", label="NIQE",
        digits=3, needs_assets=("niqe/pristine",),
    ),
    MetricSpec(
        name="ma", kind="NR", higher_better=True, unit="0-10, higher is better", label="Ma",
        digits=3, needs_assets=("ma/model",),
    ),
    MetricSpec(
        name="pi", kind="NR", higher_better=False, unit="lower is better", label="PI", digits=3,
        needs_assets=("ma/model", "niqe/pristine"),
    ),
    *(_on_y(spec) for spec in (_PSNR, _SSIM, _MS_SSIM, _RMSE)),
)  # fmt: skip

_BY_NAME = {spec.name: spec for spec in METRIC_TABLE}

#: The columns of ``superres metrics``, in order (its ``--rgb`` switch changes the colour space,
#: not the names).
IMAGE_METRICS: tuple[str, ...] = tuple(s.name for s in METRIC_TABLE if not s.y_channel)

#: The columns of the benchmark report (and its CSV and JSON files), in order.
REPORT_METRICS: tuple[str, ...] = ("psnr_y", "ssim_y", "ms_ssim_y", "rmse_y", "niqe", "lpips")


def metric_spec(name: str) -> MetricSpec:
    """The table's entry for ``name``.

    Raises:
        UnknownNameError: no metric of that name (the close ones are suggested).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownNameError(name, _BY_NAME) from None
