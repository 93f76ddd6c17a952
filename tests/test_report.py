"""``superres report`` and ``superres metrics``: tables, files, figures and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.evaluation import report as report_module
from superres.evaluation.benchmark import run_benchmark
from superres.evaluation.report import HR_ROW, build_report, write_report
from superres.metrics.fidelity import psnr


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")


@pytest.fixture(scope="module")
def set5_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real report (bicubic and the shipped SRCNN on Set5), written through the CLI."""
    from conftest import find_data_root

    root = find_data_root()
    if root is None or not (root / "Set5").is_dir():
        pytest.skip("benchmark data not found: set SUPERRES_DATA")
    out = tmp_path_factory.mktemp("report") / "set5"
    code = main(
        [
            "report",
            "--models",
            "bicubic",
            "srcnn-x4",
            "--datasets",
            "set5",
            "--out",
            str(out),
            "--data-root",
            str(root),
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 0
    return out, root


@pytest.mark.data
def test_report_writes_every_file(set5_report: tuple[Path, Path]) -> None:
    out, _ = set5_report
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"report.md", "report.json", "scores.csv", "per_image.csv"} <= names
    assert "perception_distortion.png" in names
    figures = sorted(n for n in names if n.startswith("figures/"))
    assert len(figures) == 3  # the default --crops
    for name in [*figures, "perception_distortion.png"]:
        with Image.open(out / name) as im:
            assert im.format == "PNG"
            assert min(im.size) > 200
    # No temporary folder is left beside the report, and it is readable like any new folder.
    assert [p.name for p in out.parent.iterdir()] == ["set5"]
    assert out.stat().st_mode & 0o755 == 0o755
    assert (out / "report.md").stat().st_mode & 0o644 == 0o644


@pytest.mark.data
def test_report_scores_agree_with_eval_and_published_rows(set5_report: tuple[Path, Path]) -> None:
    out, root = set5_report
    doc = json.loads((out / "report.json").read_text())
    assert doc["metrics"] == ["psnr_y", "ssim_y", "ms_ssim_y", "rmse_y", "niqe", "lpips"]
    rows = {(r["model"], r["dataset"]): r for r in doc["results"]}
    evaluated = run_benchmark(["bicubic", "srcnn-x4"], ["set5"], [4], root=root, progress=False)
    for r in evaluated.results:
        mine = rows[(r.model, "set5")]
        assert mine["psnr_y"] == pytest.approx(r.psnr_y, abs=1e-9)
        assert mine["ssim_y"] == pytest.approx(r.ssim_y, abs=1e-9)
        # RMSE-Y and PSNR-Y are two views of one MSE per image.
        assert 0 < mine["rmse_y"] < 20
        assert 0.9 < mine["ms_ssim_y"] <= 1
    # The learned model is closer to HR than bicubic by every full-reference measure.
    bic, srcnn = rows[("bicubic", "set5")], rows[("srcnn-x4", "set5")]
    assert srcnn["psnr_y"] > bic["psnr_y"]
    assert srcnn["lpips"] < bic["lpips"]
    # HR is the most natural-looking row; bicubic blur scores clearly worse on NIQE.
    hr = rows[(HR_ROW, "set5")]
    assert hr["psnr_y"] is None
    assert hr["niqe"] + 1.5 < bic["niqe"]
    table = (out / "report.md").read_text()
    assert "| HR | - | - | - | - | " in table
    assert "30.48 (SRCNN)" in table  # the published row beside ours
    lines = (out / "per_image.csv").read_text().splitlines()
    assert len(lines) == 1 + 5 * 3  # header + 5 images x (HR, bicubic, srcnn-x4)


@pytest.mark.data
def test_report_refuses_a_used_folder_and_leaves_it_alone(
    set5_report: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _root = set5_report
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code = main(["report", "--models", "bicubic", "--datasets", "set5", "--out", str(out)])
    assert code == 1
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.data
def test_interrupted_report_leaves_nothing(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = build_report(
        ["bicubic"], ["set5"], root=data_root, lpips_metric=False, crops=2, progress=False
    )
    assert report.metrics == ["psnr_y", "ssim_y", "ms_ssim_y", "rmse_y", "niqe"]
    assert len(report.crops) == 2

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module, "perception_distortion_plot", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(report, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.data
def test_missing_metric_files_become_a_note_not_a_number(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No data root with the LPIPS trunk and an empty, offline cache: LPIPS cannot be computed.
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "empty-cache"))
    original = report_module.default_lpips
    monkeypatch.setattr(
        report_module,
        "default_lpips",
        lambda root, net="squeeze", **kw: original(tmp_path / "no-data", net, **kw),
    )
    report = build_report(["bicubic"], ["set5"], root=data_root, crops=0, progress=False)
    assert "lpips" not in report.metrics
    assert any(note.startswith("LPIPS left out:") for note in report.notes)
    assert all(row.lpips is None for row in report.rows)


def _write(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


@pytest.fixture
def pair_folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    ref, out = tmp_path / "ref", tmp_path / "out"
    ref.mkdir()
    out.mkdir()
    for name in ("a", "b"):
        base = rng.integers(0, 256, (120, 130, 3), dtype=np.uint8)
        noisy = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        _write(ref / f"{name}.png", base)
        _write(out / f"{name}.png", noisy)
    return out, ref


def test_metrics_pair_of_files_matches_the_library(
    pair_folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ref = pair_folders
    report = tmp_path / "m.json"
    from conftest import find_data_root

    root = find_data_root()
    extra = ["--data-root", str(root)] if root is not None else []
    args = ["metrics", str(out / "a.png"), str(ref / "a.png"), "--output-json", str(report)]
    assert main(args + extra) == 0
    text = capsys.readouterr().out
    assert "| image | mse | rmse | psnr | ssim |" in text
    doc = json.loads(report.read_text())
    scores = doc["images"][0]["scores"]
    a = torch.from_numpy(np.array(Image.open(out / "a.png"))).permute(2, 0, 1)[None] / 255.0
    b = torch.from_numpy(np.array(Image.open(ref / "a.png"))).permute(2, 0, 1)[None] / 255.0
    expected = float(psnr(a.double(), b.double(), y_channel=True)[0])
    assert scores["psnr"] == pytest.approx(expected, abs=1e-9)
    assert scores["rmse"] == pytest.approx(255 * 10 ** (-expected / 20), rel=1e-9)
    # 120 px is too small for five-scale MS-SSIM and NIQE's 96-px blocks leave one: reported.
    assert "ms_ssim" in doc["images"][0]["skipped"]
    if root is not None:  # the data root holds NIQE's parameters and LPIPS' weights
        assert math.isfinite(scores["niqe"])
        assert 0 < scores["lpips"] < 1
    else:
        assert "niqe_pris_params.npz" in doc["images"][0]["skipped"]["niqe"]


def test_metrics_folders_are_matched_by_name_with_a_mean_row(
    pair_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, ref = pair_folders
    assert main(["metrics", str(out), str(ref), "--rgb", "--crop-border", "4"]) == 0
    text = capsys.readouterr().out
    assert "on RGB, border 4 px" in text
    assert "| a.png |" in text
    assert "| b.png |" in text
    assert "| mean |" in text


def test_metrics_bad_inputs_are_named_errors(
    pair_folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ref = pair_folders
    small = tmp_path / "small.png"
    _write(small, np.zeros((40, 50, 3), dtype=np.uint8))
    assert main(["metrics", str(small), str(ref / "a.png")]) == 1
    assert "full-reference metrics need images of one size" in capsys.readouterr().err
    assert main(["metrics", str(out), str(ref / "a.png")]) == 1
    assert "give two folders" in capsys.readouterr().err
    (out / "c.png").write_bytes((out / "a.png").read_bytes())
    assert main(["metrics", str(out), str(ref)]) == 1
    assert "have no reference" in capsys.readouterr().err
    assert main(["metrics", str(tmp_path / "missing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_metrics_with_nothing_to_score_is_an_error_not_an_empty_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = tmp_path / "tiny.png"
    _write(tiny, np.zeros((4, 4, 3), dtype=np.uint8))
    out_json = tmp_path / "m.json"
    from conftest import find_data_root

    root = find_data_root()
    extra = ["--data-root", str(root)] if root is not None else []
    assert main(["metrics", str(tiny), "--output-json", str(out_json), *extra]) == 1
    captured = capsys.readouterr()
    assert "no metric applies to" in captured.err
    if root is not None:  # with NIQE's parameters at hand, the size is what stops it
        assert "niqe: needs at least 96x96 pixels" in captured.err
    else:
        assert "superres assets get niqe/pristine" in captured.err
    assert "niqe: niqe:" not in captured.err
    assert "| image |" not in captured.out
    assert not out_json.exists()


def test_metrics_check_the_paths_before_loading_any_metric_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import superres.evaluation.image_metrics as image_metrics

    def no_models(**_: object) -> None:
        raise AssertionError("metric models were loaded (or downloaded) for a missing input")

    monkeypatch.setattr(image_metrics, "prepare_options", no_models)
    assert main(["metrics", str(tmp_path / "missing.png")]) == 1
    assert "missing.png' does not exist" in capsys.readouterr().err


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    import os

    from superres.io.files import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_report_without_models_is_a_named_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--datasets", "set5", "--out", str(tmp_path / "r")]) == 1
    assert "give --models NAME ... and/or --weights FILE" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--crops", "-1", "crops must be a whole number >= 0"), ("--crop-size", "0", "crop_size")],
)
def test_report_checks_its_crop_options_before_any_image(
    flag: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--models", "bicubic", "--datasets", "set5", "--out", str(tmp_path / "r")]
    assert main([*argv, flag, value, "--data-root", str(tmp_path / "no_data")]) == 1
    assert message in capsys.readouterr().err  # not the missing data: the options come first
    assert not (tmp_path / "r").exists()
