"""bsd100-real / urban100-real: benchmark HR degraded by the Real-ESRGAN pipeline, fixed seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from superres.cli import main
from superres.data.catalog import DATASETS, list_datasets
from superres.data.datasets import BenchmarkSet, bicubic_downscale
from superres.data.sources import get_source


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))


def test_the_real_sets_are_test_sets_of_their_base_images() -> None:
    for name, base in (("bsd100-real", "bsd100"), ("urban100-real", "urban100")):
        assert name in list_datasets("test")
        info = DATASETS.get(name)
        assert info.degraded_from == base
        assert info.stems == DATASETS.get(base).stems
        assert info.folder == DATASETS.get(base).folder
        assert get_source(name) is get_source(base)  # `superres data get` fetches the HR set


def test_lr_is_degraded_fixed_per_image_and_never_the_official_file(data_root: Path) -> None:
    real = BenchmarkSet("bsd100-real", 4, root=data_root, cache=False)
    again = BenchmarkSet("bsd100-real", 4, root=data_root, cache=False)
    clean = BenchmarkSet("bsd100", 4, root=data_root)
    a, b = real[0], real[1]
    assert a.lq_source == "generated"
    assert clean[0].lq_source == "official"  # the shared data has BSD100's official x4 LR
    assert a.lq.shape == (3, a.hr.shape[1] // 4, a.hr.shape[2] // 4)
    torch.testing.assert_close(a.hr, clean[0].hr)  # the targets are the clean HR
    torch.testing.assert_close(again[0].lq, a.lq, rtol=0, atol=0)  # the same everywhere
    bicubic = bicubic_downscale(a.hr, 4)
    assert (a.lq - bicubic).abs().mean() > 2 / 255  # really degraded, not bicubic
    levels = a.lq * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)  # 8-bit, like a file
    assert b.lq.shape[-2:] == (b.hr.shape[1] // 4, b.hr.shape[2] // 4)
    x2 = BenchmarkSet("bsd100-real", 2, root=data_root, cache=False)[0]
    assert x2.lq.shape[-2:] == (a.hr.shape[1] // 2, a.hr.shape[2] // 2)


def test_the_cached_lr_is_reused_and_a_damaged_one_regenerated(
    data_root: Path, tmp_path: Path
) -> None:
    first = BenchmarkSet("bsd100-real", 4, root=data_root)[0]
    cached = list((tmp_path / "cache" / "lr").rglob("*.png"))
    assert len(cached) == 1
    assert "bsd100-real" in cached[0].parts
    assert BenchmarkSet("bsd100-real", 4, root=data_root)[0].lq.equal(first.lq)
    cached[0].write_bytes(cached[0].read_bytes()[:-40])  # damaged: its checksum no longer holds
    torch.testing.assert_close(
        BenchmarkSet("bsd100-real", 4, root=data_root)[0].lq, first.lq, rtol=0, atol=0
    )


def test_eval_scores_a_real_set_under_its_own_name(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.json"
    args = ["eval", "--models", "bicubic", "--datasets", "bsd100-real", "bsd100", "--limit", "2"]
    assert main([*args, "--data-root", str(data_root), "--output-json", str(out), "-q"]) == 0
    assert "BSD100-real (first 2 images)" in capsys.readouterr().out
    psnr = {r["dataset"]: r["psnr_y"] for r in json.loads(out.read_text())["results"]}
    # Blur, noise and JPEG cost bicubic far more than the clean LR does.
    assert psnr["bsd100-real"] < psnr["bsd100"] - 0.5
