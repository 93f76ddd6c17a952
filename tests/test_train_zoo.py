"""scripts/train_zoo.py end to end on the CPU with a tiny budget: warm start from the shipped
weights, the Set5 decision against the shipped model, and a pack that fits what a lent GPU
machine returns (at most 8 files, each under 16 MiB)."""

from __future__ import annotations

import functools
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from conftest import load_script
from superres.data.catalog import DATASETS

SET5_NAMES = DATASETS.get("set5").stems or ()

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script(SCRIPTS / "train_zoo.py", monkeypatch)  # it imports subpixel_pattern.py


def _smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 6, 3)
    planes = [128 + 90 * np.sin(xx / 7 + p) * np.cos(yy / 9 - p) for p in phase]
    noise = rng.normal(0, 6, (h, w, 3))
    return np.clip(np.stack(planes, -1) + noise, 0, 255).astype(np.uint8)


def _tiny_root(data_root: Path, tmp_path: Path) -> Path:
    """T91, BSD200 and Set5 of small synthetic images, with the real trunk, NIQE and LPIPS files."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for folder, count, size in (("T91", 3, 64), ("BSD200", 2, 64), ("Set5", 5, 128)):
        (root / folder / "HR").mkdir(parents=True)
        # Set5 is a benchmark set: its file names must be the catalog's.
        names = SET5_NAMES if folder == "Set5" else tuple(f"im{i}" for i in range(count))
        for name in names[:count]:
            Image.fromarray(_smooth(rng, size, size)).save(root / folder / "HR" / f"{name}.png")
    # the real perceptual trunk and NIQE parameters (small files of the data root)
    (root / "weights").mkdir()
    shutil.copy(data_root / "weights/squeezenet1_1_imagenet_features.safetensors", root / "weights")
    shutil.copytree(data_root / "niqe", root / "niqe")
    shutil.copytree(data_root / "weights/lpips", root / "weights/lpips")
    return root


Sitting = Callable[..., tuple[ModuleType, list[str], Path]]


@pytest.fixture
def sitting(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sitting:
    """``sitting(timing=..., only=...)``: the script, its tiny-run arguments (data, runs, out, the
    jobs ``only``, ``timing`` = budget minutes, scoring and start-up seconds, CPU, tiny batches,
    no validation) and out."""
    return functools.partial(_sitting, data_root, tmp_path, monkeypatch)


def _sitting(
    data_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    timing: tuple[str, str, str],
    only: tuple[str, ...],
) -> tuple[ModuleType, list[str], Path]:
    budget, score_s, startup_s = timing
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    root = _tiny_root(data_root, tmp_path)
    out = tmp_path / "out"
    argv = ["--data-root", str(root), "--runs", str(tmp_path / "runs"), "--out", str(out)]
    argv += ["--budget-minutes", budget, "--min-score-s", score_s, "--device", "cpu"]
    argv += ["--set", "data.batch_size=2", "--set", "data.gt_size=32", "--d-warmup", "1"]
    argv += ["--startup-s", startup_s, "--only", *only, "--set", "validation.every=1000000"]
    return _script(monkeypatch), argv, out


@pytest.mark.data
def test_one_sitting_on_the_cpu(sitting: Sitting, tmp_path: Path) -> None:
    script, argv, out = sitting(timing=("0.6", "12", "20"), only=("srcnn_x4", "srgan_x4"))
    argv += ["--test-sets", "set14"]
    extra = tmp_path / "train_speed.json"
    extra.write_text("{}")
    argv += ["--bundle-extra", str(extra)]
    assert script.main(argv) == 0

    files = sorted(p.name for p in out.iterdir())
    assert "zoo_results.tar.gz" in files
    assert len(files) <= 8
    assert all((out / f).stat().st_size < 16 * 2**20 for f in files)
    with tarfile.open(out / "zoo_results.tar.gz") as tar:
        names = tar.getnames()
        scores = json.loads(tar.extractfile("scores.json").read())  # type: ignore[union-attr]
    assert "srcnn_x4/train.out" in names
    assert "train_speed.json" in names  # a file of the same sitting travels in the bundle
    decisions = {d["shipped"]: d for d in scores["decisions"]}
    assert set(decisions) == {"srcnn-x4", "srgan-x4"}
    for name, d in decisions.items():
        assert d["iterations"] >= 1
        assert "set5" in d["candidate"]
        assert "set5" in d["shipped_scores"]
        # a winner's weights come back under its catalog name, a loser's do not
        assert (f"{name}.safetensors" in files) == d["kept"]
    srgan = decisions["srgan-x4"]
    assert srgan["candidate"]["set5"]["niqe"] is not None
    assert srgan["lattice"] is not None
    assert "NIQE" in srgan["reason"]
    # each run started from the shipped weights (its stored recipe says so)
    from superres.models.weights_file import read_metadata

    for job, name in (("srcnn_x4", "srcnn-x4"), ("srgan_x4", "srgan-x4")):
        recipe = read_metadata(tmp_path / "runs" / job / "weights_last.safetensors")["recipe_yaml"]
        assert f"weights/{name}.safetensors" in recipe


@pytest.mark.data
@pytest.mark.slow
def test_a_first_release_trains_its_stages_in_order_and_is_judged_against_its_reference(
    sitting: Sitting, tmp_path: Path
) -> None:
    jobs = ("real_compact_psnr_x4", "real_compact_x4")
    script, argv, out = sitting(timing=("1.5", "25", "15"), only=jobs)
    argv += ["--set", "model.num_convs=2", "--set", "model.num_features=8"]
    argv += ["--set", "data.repeat=1"]
    argv += ["--set", "train.total_iters=3"]  # each stage ends early: the GAN one then starts
    assert script.main(argv) == 0
    with tarfile.open(out / "zoo_results.tar.gz") as tar:
        scores = json.loads(tar.extractfile("scores.json").read())  # type: ignore[union-attr]
    decisions = {d["shipped"]: d for d in scores["decisions"]}
    assert set(decisions) == {"real-compact-psnr-x4", "real-compact-x4"}
    psnr, gan = decisions["real-compact-psnr-x4"], decisions["real-compact-x4"]
    assert "set5-real vs edsr-baseline-x4: PSNR-Y" in psnr["reason"]
    assert "LPIPS" in gan["reason"]
    assert gan["lattice"] is not None  # the sub-pixel check every zoo GAN gets
    assert "set5-real" in psnr["shipped_scores"]  # the reference's scores, on the same set
    # The GAN stage started from the PSNR stage of this sitting, not from shipped weights.
    from superres.models.weights_file import read_metadata

    runs = tmp_path / "runs"
    recipe = read_metadata(runs / "real_compact_x4" / "weights_last.safetensors")["recipe_yaml"]
    assert str(runs / "real_compact_psnr_x4" / "weights_last.safetensors") in recipe
    for d in (psnr, gan):
        assert (f"{d['shipped']}.safetensors" in {p.name for p in out.iterdir()}) == d["kept"]


def test_each_job_is_scored_at_its_models_scale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import superres.evaluation.report as report

    script = _script(monkeypatch)
    seen: dict[str, int] = {}

    def fake_report(models: list[str], datasets: list[str], **kwargs: object) -> object:
        seen[models[0]] = int(kwargs["scale"])  # type: ignore[call-overload]
        raise StopIteration  # the scale is all this test needs

    monkeypatch.setattr(report, "build_report", fake_report)
    args = script.argparse.Namespace(data_root=None, device="cpu")
    for name in ("srresnet_x2", "srresnet_x4", "real_compact_x4"):
        job = next(j for j in script.JOBS if j.name == name)
        with pytest.raises(StopIteration):
            script.score(job, tmp_path / "c.safetensors", ["set5"], args)
    assert seen == {"srresnet-x2": 2, "srresnet-x4": 4, "edsr-baseline-x4": 4}
