"""The one metric table: what ``superres metrics`` and the report read from it."""

from __future__ import annotations

import dataclasses

import pytest

from superres.assets import list_assets
from superres.errors import UnknownNameError
from superres.evaluation.image_metrics import METRIC_INFO
from superres.evaluation.report import METRICS, ReportRow
from superres.metrics.table import IMAGE_METRICS, METRIC_TABLE, REPORT_METRICS, metric_spec


def test_every_metric_is_listed_once_and_each_list_names_table_entries() -> None:
    names = [spec.name for spec in METRIC_TABLE]
    assert len(names) == len(set(names))
    assert set(IMAGE_METRICS) | set(REPORT_METRICS) <= set(names)


def test_superres_metrics_columns_units_and_directions() -> None:
    assert METRIC_INFO == {
        "mse": ("0-255 scale", False),
        "rmse": ("0-255 scale", False),
        "psnr": ("dB", True),
        "ssim": ("0-1", True),
        "ms_ssim": ("0-1", True),
        "lpips": ("distance, 0 = identical", False),
        "niqe": ("lower is more natural", False),
        "ma": ("0-10, higher is better", True),
        "pi": ("lower is better", False),
    }


def test_report_columns_headers_digits_and_directions() -> None:
    shown = {m: (metric_spec(m).header, metric_spec(m).digits) for m in REPORT_METRICS}
    assert shown == {
        "psnr_y": ("PSNR-Y (dB)", 2),
        "ssim_y": ("SSIM-Y", 4),
        "ms_ssim_y": ("MS-SSIM-Y", 4),
        "rmse_y": ("RMSE-Y", 2),
        "niqe": ("NIQE", 3),
        "lpips": ("LPIPS", 4),
    }
    assert METRICS == {
        "psnr_y": True,
        "ssim_y": True,
        "ms_ssim_y": True,
        "rmse_y": False,
        "niqe": False,
        "lpips": False,
    }


def test_the_report_rows_have_one_field_per_report_metric_in_order() -> None:
    fields = [f.name for f in dataclasses.fields(ReportRow)]
    assert fields[-len(REPORT_METRICS) :] == list(REPORT_METRICS)


def test_a_y_variant_shares_the_facts_of_its_metric() -> None:
    for spec in METRIC_TABLE:
        if spec.y_channel:
            plain = metric_spec(spec.name.removesuffix("_y"))
            assert (spec.kind, spec.higher_better, spec.unit) == (
                plain.kind,
                plain.higher_better,
                plain.unit,
            )


def test_the_files_a_metric_needs_are_catalog_assets() -> None:
    for spec in METRIC_TABLE:
        for pattern in spec.needs_assets:
            assert list_assets(pattern), f"{spec.name}: no asset matches {pattern!r}"


def test_an_unknown_metric_name_suggests_the_close_ones() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'psnr'"):
        metric_spec("psnrr")
