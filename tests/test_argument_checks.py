"""The library checks its own arguments: the Python API refuses what the CLI refuses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from superres.errors import ConfigError
from superres.evaluation.image_metrics import prepare_options
from superres.inference.batch import run_jobs, upscale_files
from superres.training.config import RunOptions


@pytest.mark.parametrize("limit", [0, -5, math.inf, math.nan])
def test_run_options_refuse_a_time_limit_that_is_not_a_positive_number(limit: float) -> None:
    with pytest.raises(ConfigError, match=r"--time-limit must be a positive.*leave it out"):
        RunOptions(out_dir=Path("run"), time_limit=limit)


def test_run_options_refuse_negative_workers() -> None:
    with pytest.raises(ConfigError, match=r"--workers must be 0 or more \(num_workers=-1\)"):
        RunOptions(out_dir=Path("run"), num_workers=-1)


def test_run_options_accept_the_edges() -> None:
    options = RunOptions(out_dir=Path("run"), num_workers=0, time_limit=0.5)
    assert (options.num_workers, options.time_limit) == (0, 0.5)


@pytest.mark.parametrize("max_pixels", [0, -1])
def test_upscale_files_refuses_a_pixel_limit_below_one(tmp_path: Path, max_pixels: int) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"not read: the check comes first")
    with pytest.raises(ConfigError, match=rf"max_pixels must be a positive.*got {max_pixels}"):
        upscale_files([str(src)], model="bicubic", scale=2, max_pixels=max_pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_run_jobs_refuses_a_pixel_limit_below_one() -> None:
    with pytest.raises(ConfigError, match="max_pixels"):
        run_jobs([], None, max_pixels=0)  # type: ignore[arg-type]  # refused before it is used


def test_metric_options_refuse_a_negative_crop_border() -> None:
    with pytest.raises(ConfigError, match=r"--crop-border must be >= 0 \(crop_border=-1\)"):
        prepare_options(crop_border=-1, full_reference=False)


@pytest.mark.parametrize("port", [-1, 65536])
def test_mos_server_refuses_a_port_out_of_range(tmp_path: Path, port: int) -> None:
    server = pytest.importorskip("superres.mos.server")  # needs FastAPI and uvicorn
    with pytest.raises(ConfigError, match=rf"--port must be in 0\.\.65535, got {port}"):
        server.serve(tmp_path / "study.db", port=port)
