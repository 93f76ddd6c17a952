"""`superres eval`: the published bicubic rows, both protocols, outputs and errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.data.datasets import BenchmarkSet, bicubic_downscale, mod_crop
from superres.errors import DatasetNotFoundError, UnsupportedScaleError
from superres.evaluation.benchmark import format_markdown, run_benchmark
from superres.evaluation.published import BICUBIC

# Bicubic under today's protocol, from an independent implementation of it, and the papers'
# bicubic rows (legacy protocol): {(dataset, scale): (PSNR-Y, SSIM-Y)}.
GOLDEN_DEFAULT = {key: row.default for key, row in BICUBIC.items()}
PUBLISHED_LEGACY = {key: row.legacy for key, row in BICUBIC.items()}


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generated LR images are cached; keep the cache out of the user's home during tests.
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _check(report_json: Path, golden: dict, atol_psnr: float, atol_ssim: float) -> None:
    rows = json.loads(report_json.read_text())["results"]
    got = {(r["dataset"], r["scale"]): (r["psnr_y"], r["ssim_y"]) for r in rows}
    for key, (p, s) in golden.items():
        if key not in got:
            continue
        gp, gs = got[key]
        assert abs(gp - p) <= atol_psnr, (key, gp, p)
        assert abs(gs - s) <= atol_ssim, (key, gs, s)


def _eval_json(root: Path, out: Path, *args: str) -> int:
    """``superres eval ARGS`` on the data ``root``, quiet, its JSON written to ``out``."""
    return main(["eval", *args, "--data-root", str(root), "--output-json", str(out), "-q"])


@pytest.mark.data
@pytest.mark.parametrize("scale", [4, 2])
def test_bicubic_matches_published_protocol_small_sets(
    data_root: Path, tmp_path: Path, scale: int, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    sets = ["set5", "set14"]
    args = ["--models", "bicubic", "--datasets", *sets, "--scales", str(scale)]
    assert _eval_json(data_root, out, *args) == 0
    _check(out, GOLDEN_DEFAULT, 0.005, 0.0002)
    table = capsys.readouterr().out
    assert "| bicubic | x" in table
    assert "Set5" in table


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("scale", [4, 2])
def test_bicubic_matches_published_protocol_all_sets(
    data_root: Path, tmp_path: Path, scale: int
) -> None:
    out = tmp_path / "r.json"
    sets = ["set5", "set14", "bsd100", "urban100"]
    args = ["--models", "bicubic", "--datasets", *sets, "--scales", str(scale)]
    assert _eval_json(data_root, out, *args) == 0
    _check(out, GOLDEN_DEFAULT, 0.005, 0.0002)


@pytest.mark.data
@pytest.mark.parametrize("scale", [4, 2])
def test_legacy_protocol_reproduces_paper_rows(data_root: Path, tmp_path: Path, scale: int) -> None:
    out = tmp_path / "r.json"
    args = ["--models", "bicubic", "--datasets", "set5", "--scales", str(scale)]
    assert _eval_json(data_root, out, *args, "--protocol", "legacy") == 0
    _check(out, PUBLISHED_LEGACY, 0.01, 0.0005)


@pytest.fixture
def fused_models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The class names of the networks the evaluation puts on the fused CPU path, in order."""
    import superres.evaluation.protocol as protocol

    names: list[str] = []
    real = protocol.fast_network

    def spy(model: torch.nn.Module, *, dtype: torch.dtype) -> torch.nn.Module:
        names.append(type(model).__name__)
        return real(model, dtype=dtype)

    monkeypatch.setattr(protocol, "fast_network", spy)
    return names


@pytest.mark.data
def test_fused_path_scores_equal_the_plain_modules(
    data_root: Path, fused_models: list[str]
) -> None:
    args = (["srcnn-x4", "srresnet-x4"], ["set5"], [4])
    fused = run_benchmark(*args, root=data_root, progress=False)
    assert fused_models == ["SRCNN", "SRResNet"]
    plain = run_benchmark(*args, root=data_root, progress=False, fused=False)
    assert len(fused_models) == 2  # fused=False leaves the modules as they are
    for a, b in zip(fused.per_image, plain.per_image, strict=True):
        assert (a.model, a.image) == (b.model, b.image)
        assert a.psnr_y == pytest.approx(b.psnr_y, abs=2e-3)
    for a, b in zip(fused.results, plain.results, strict=True):
        assert a.psnr_y == pytest.approx(b.psnr_y, abs=1e-4)
        assert a.ssim_y == pytest.approx(b.ssim_y, abs=1e-6)


@pytest.mark.data
def test_official_lr_equals_generated(data_root: Path) -> None:
    official = BenchmarkSet("set5", 4, root=data_root, lq_source="official")
    generated = BenchmarkSet("set5", 4, root=data_root, lq_source="generated", cache=False)
    for a, b in zip(official, generated, strict=True):
        assert a.lq_source == "official"
        assert b.lq_source == "generated"
        assert torch.equal(a.lq, b.lq), a.name
        assert torch.equal(a.hr, b.hr)


# --- a tiny synthetic data root: runs everywhere, no shared data needed ---------------------------


def _make_root(tmp_path: Path) -> Path:
    """A Set5 (its five names) of four smooth RGB images and a gray ramp; odd sizes exercise
    mod-crop."""
    rng = np.random.default_rng(0)
    hr_dir = tmp_path / "root" / "Set5" / "HR"
    hr_dir.mkdir(parents=True)
    for name in ("baby", "bird", "butterfly", "head"):
        # random 6x6 colours, bicubic-enlarged: smooth, so bicubic does well
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        coarse.resize((45, 50), Image.Resampling.BICUBIC).save(hr_dir / f"{name}.png")
    ramp = (np.add.outer(np.arange(40), np.arange(42)) * 3).astype(np.uint8)
    Image.fromarray(ramp, mode="L").save(hr_dir / "woman.png")
    return tmp_path / "root"


def test_eval_writes_table_json_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _make_root(tmp_path)
    js, cs = tmp_path / "out.json", tmp_path / "out.csv"
    args = ["--models", "bicubic", "--datasets", "set5", "--scales", "2", "4"]
    code = _eval_json(root, js, *args, "--output-csv", str(cs))
    assert code == 0
    doc = json.loads(js.read_text())
    assert doc["protocol"] == "default"
    assert [(r["model"], r["dataset"], r["scale"], r["images"]) for r in doc["results"]] == [
        ("bicubic", "set5", 2, 5),
        ("bicubic", "set5", 4, 5),
    ]
    assert {"psnr_y", "ssim_y"} <= set(doc["results"][0])
    assert len(doc["per_image"]) == 10
    # The set mean is the mean of the per-image scores.
    per = [r["psnr_y"] for r in doc["per_image"] if r["scale"] == 2]
    assert all(20 < p < 80 for p in per)
    assert doc["results"][0]["psnr_y"] == pytest.approx(sum(per) / len(per))
    rows = list(csv.DictReader(cs.open()))
    assert [r["scale"] for r in rows] == ["2", "4"]
    per_image_rows = list(csv.DictReader((tmp_path / "out_per_image.csv").open()))
    assert len(per_image_rows) == 10
    assert "| bicubic | x2 |" in capsys.readouterr().out


def test_eager_flag_runs_the_plain_modules(tmp_path: Path, fused_models: list[str]) -> None:
    root = _make_root(tmp_path)
    scores = {}
    for flags in ([], ["--eager"]):
        out = tmp_path / f"out{len(flags)}.json"
        args = ["--models", "srresnet-x4", "--datasets", "set5", "--device", "cpu"]
        assert _eval_json(root, out, *args, *flags) == 0
        scores[bool(flags)] = json.loads(out.read_text())["results"][0]["psnr_y"]
        assert fused_models == ["SRResNet"]  # the default fuses once; --eager does not
    assert scores[True] == pytest.approx(scores[False], abs=1e-3)


def test_eval_uses_official_lr_when_present(tmp_path: Path) -> None:
    root = _make_root(tmp_path)
    bench = BenchmarkSet("set5", 2, root=root, cache=False)
    first = bench.files[0]
    # An "official" LR that differs from ours must be the one used.
    lr_dir = first.parent.parent / "LR_bicubic_x2"
    lr_dir.mkdir()
    hr = mod_crop(bench[0].hr, 2)
    lr = bicubic_downscale(hr, 2)
    lr_u8 = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    lr_u8[0, 0] ^= 0xFF
    Image.fromarray(lr_u8).save(lr_dir / first.name)
    pair = BenchmarkSet("set5", 2, root=root, cache=False)[0]
    assert pair.lq_source == "official"
    assert not torch.equal(pair.lq, lr)
    # A wrong-sized official LR is an error that names the file.
    Image.fromarray(lr_u8[:-1]).save(lr_dir / first.name)
    with pytest.raises(Exception, match="LR_bicubic_x2"):
        BenchmarkSet("set5", 2, root=root, cache=False)[0]


def test_generated_lr_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _make_root(tmp_path)
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "c"))
    first = BenchmarkSet("set5", 3, root=root)[0]
    cached = list((tmp_path / "c").rglob("*.png"))
    assert len(cached) == 1
    again = BenchmarkSet("set5", 3, root=root)[0]
    assert torch.equal(first.lq, again.lq)


def test_missing_dataset_exits_nonzero_with_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["eval", "--models", "bicubic", "--datasets", "urban100", "--data-root", str(tmp_path)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "dataset 'urban100' not found" in err
    assert "Fix:" in err
    assert str(tmp_path / "Urban100" / "HR") in err
    with pytest.raises(DatasetNotFoundError):
        BenchmarkSet("urban100", 4, root=tmp_path)


def test_unknown_model_and_dataset_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _make_root(tmp_path)
    assert (
        main(["eval", "--models", "bicubik", "--datasets", "set5", "--data-root", str(root)]) == 2
    )
    assert "Did you mean 'bicubic'" in capsys.readouterr().err
    assert (
        main(["eval", "--models", "bicubic", "--datasets", "set55", "--data-root", str(root)]) == 2
    )
    assert "Did you mean 'set5'" in capsys.readouterr().err


def test_output_into_a_file_in_the_way_fails_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _make_root(tmp_path)
    taken = tmp_path / "nope"
    taken.write_text("a file where the folder should be")
    target = taken / "r.json"
    code = main(
        [
            "eval",
            "--models",
            "bicubic",
            "--datasets",
            "set5",
            "--data-root",
            str(root),
            "--output-json",
            str(target),
        ]
    )
    assert code == 1
    assert "is a file" in capsys.readouterr().err
    assert taken.is_file()


def test_unsupported_scale_is_rejected_up_front(tmp_path: Path) -> None:
    root = _make_root(tmp_path)
    with pytest.raises(UnsupportedScaleError):
        run_benchmark(["bicubic"], ["set5"], [0], root=root, progress=False)


def test_markdown_table_layout(tmp_path: Path) -> None:
    root = _make_root(tmp_path)
    report = run_benchmark(["bicubic"], ["set5"], [2], root=root, progress=False)
    table = format_markdown(report)
    lines = table.strip().splitlines()
    assert lines[2] == "| Model | Scale | Set5 |"
    assert lines[4].startswith("| bicubic | x2 | ")
