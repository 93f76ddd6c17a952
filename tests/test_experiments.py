"""benchmarks/experiments.py regenerates the reports' tables (issue: the reports' experiments):
every arm of every table trains (here shrunk to a narrow network and a few iterations), is scored
by the one evaluation protocol, and every claim gets a verdict; the tables, the JSON and the MOS
study are written. On this budget the verdicts say nothing about the claims: the test holds the
machinery, the GPU run the numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import test_training
from conftest import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images


def _shrink(arm: str, data: dict[str, Any]) -> dict[str, Any]:
    data = test_training.shrink_recipe(data, total_iters=2, checkpoint_every=2)
    data["data"]["train_roots"] = ["t91"]
    data["validation"]["every"] = 1000
    return data


@pytest.mark.parametrize(
    "table",
    [
        "t1_cnn_vs_gan",
        pytest.param("t2_ssim_content", marks=pytest.mark.slow),
        pytest.param("t3_mix_loss", marks=pytest.mark.slow),
        pytest.param("t4_srgan_vs_esrgan", marks=pytest.mark.slow),
    ],
)
def test_every_arm_trains_is_scored_and_every_claim_is_judged(
    table: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    experiments = load_script(BENCHMARKS / "experiments.py", monkeypatch)
    spec = experiments.load_experiment(table)
    docs = tmp_path / "experiments.md"
    results = experiments.run_experiment(
        table, out=tmp_path / "out", budget_s=60.0, data_root=tiny_root, device="cpu",
        hook=_shrink, docs=docs, datasets=["set5"],
    )  # fmt: skip
    folder = tmp_path / "out" / table
    assert json.loads((folder / "results.json").read_text()) == json.loads(json.dumps(results))
    (scores,) = results["scores"]
    for arm in spec.arms:
        assert "psnr_y" in scores[arm.name]["set5"], arm.name
        if arm.base is not None:
            assert results["iterations"][arm.name] == 2
            assert (folder / "seed0" / "weights" / f"{arm.name}.safetensors").is_file()
    for claim in results["claims"]:
        assert claim["holds"] in (True, False) or claim["values"] == {}
    table_md = (folder / "table.md").read_text()
    assert all(c.text in table_md for c in spec.claims)
    assert f"<!-- experiment {table} -->" in docs.read_text()
    assert list((folder / "report").rglob("*.png")), "the report's crop figures"
    if spec.mos is not None:
        assert Path(results["mos_study"]).is_file()
