"""One evaluation protocol: eval, report, metrics, training validation and MOS agree exactly."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.data.datasets import BenchmarkSet
from superres.evaluation.protocol import prepare_network, score_output, super_resolve
from superres.evaluation.report import build_report
from superres.models import load_weights
from superres.models.weights import load_model
from superres.mos import create_study
from superres.training.checkpoint import WEIGHTS_LAST
from superres.training.config import recipe_from_dict
from superres.training.trainer import train
from test_training import REPO, run_options, tiny_recipe
from test_training import tiny_root as tiny_root  # the fixture, for real_set5_root

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def real_set5_root(
    data_root: Path, tiny_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Tiny synthetic training sets beside the real Set5 (HR and official LR x4)."""
    root = tmp_path_factory.mktemp("mixed")
    for folder in ("T91", "BSD200"):
        (root / folder).symlink_to(tiny_root / folder)
    (root / "Set5").symlink_to(data_root / "Set5")
    return root


def _png(path: Path, rgb: torch.Tensor) -> None:
    array = (rgb.permute(1, 2, 0).double().numpy() * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(array).save(path)


@pytest.mark.parametrize("config", ["srcnn_x4", "srresnet_x4"])
def test_every_scoring_path_gives_the_same_numbers(
    config: str,
    real_set5_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A luma model (SRCNN) and an RGB one: the logged validation PSNR/SSIM of a run equal
    ``superres eval``, ``superres report`` and ``superres metrics`` on its saved weights, to the
    last digit, and the MOS study shows raters the very images the report scored."""
    monkeypatch.setenv("SUPERRES_DATA", str(real_set5_root))
    data = tiny_recipe(REPO / "configs" / f"{config}.yaml", total_iters=2, checkpoint_every=2)
    scores = train(recipe_from_dict(data), run_options(tmp_path / "run", real_set5_root))
    weights = tmp_path / "run" / WEIGHTS_LAST

    rows = []
    for extra in ([], ["--eager"]):  # eval's default (the fused CPU path), and plain PyTorch
        out = tmp_path / f"eval{len(extra)}.json"
        argv = ["eval", "--weights", str(weights), "--datasets", "set5", "--quiet", *extra]
        assert main([*argv, "--data-root", str(real_set5_root), "--output-json", str(out)]) == 0
        rows.append(json.loads(out.read_text())["results"][0])
    assert (rows[0]["psnr_y"], rows[0]["ssim_y"]) == (scores["psnr"], scores["ssim"])
    # The two execution paths agree within 1e-5 before rounding: a flipped rounding at most.
    assert rows[1]["psnr_y"] == pytest.approx(scores["psnr"], abs=1e-4)

    report = build_report(
        [],
        ["set5"],
        weights=[weights],
        root=real_set5_root,
        niqe_metric=False,
        lpips_metric=False,
        crops=0,
        progress=False,
    )
    assert (report.rows[0].psnr_y, report.rows[0].ssim_y) == (scores["psnr"], scores["ssim"])

    # superres metrics on the protocol's 8-bit outputs against the mod-cropped HR.
    model = prepare_network(load_weights(weights), torch.device("cpu"), fused=True)
    sr_dir, hr_dir = tmp_path / "sr", tmp_path / "hr"
    sr_dir.mkdir()
    hr_dir.mkdir()
    bench = BenchmarkSet("set5", 4, root=real_set5_root)
    outputs = {}
    for pair in bench:
        sr = super_resolve(model, pair.lq, 4)
        outputs[pair.name] = sr
        _png(sr_dir / f"{pair.name}.png", sr)
        _png(hr_dir / f"{pair.name}.png", pair.hr)
        assert score_output(sr, pair.hr, 4) == next(
            (p.psnr_y, p.ssim_y) for p in report.per_image if p.image == pair.name
        )
    doc = tmp_path / "metrics.json"
    assert main(["metrics", str(sr_dir), str(hr_dir), "--crop-border", "4",
                 "--output-json", str(doc)]) == 0  # fmt: skip
    capsys.readouterr()
    mean = json.loads(doc.read_text())["mean"]
    assert mean["psnr"] == scores["psnr"]
    assert mean["ssim"] == scores["ssim"]


def test_mos_raters_see_the_images_the_report_scores(data_root: Path, tmp_path: Path) -> None:
    study = create_study(
        tmp_path / "study.db", ["srcnn-x4"], "set5", root=data_root, limit=2, seed=0,
        device="cpu", progress=False,
    )  # fmt: skip
    model = prepare_network(load_model("srcnn-x4"), torch.device("cpu"), fused=True)
    bench = BenchmarkSet("set5", 4, root=data_root)
    with sqlite3.connect(study.path) as conn:
        rows = conn.execute("SELECT image, png FROM items WHERE method = 'srcnn-x4'").fetchall()
    assert len(rows) == 2
    for name, png in rows:
        pair = next(p for p in bench if p.name == name)
        expected = (super_resolve(model, pair.lq, 4) * 255.0 + 0.5).floor().to(torch.uint8)
        shown = torch.from_numpy(np.array(Image.open(io.BytesIO(png)))).permute(2, 0, 1)
        assert torch.equal(shown, expected), name
