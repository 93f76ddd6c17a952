"""Training on real-world LR: synthesised per batch from the HR crops, reproducible on resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from superres.data.degradations import DegradationConfig
from superres.data.realworld import RealWorldLR
from superres.errors import ConfigError
from superres.imaging.sharpen import usm_sharpen
from superres.training.config import recipe_from_dict
from superres.training.trainer import Trainer
from test_training import REPO, run_options, tiny_recipe, tiny_root  # noqa: F401  (fixture)

CPU = torch.device("cpu")


def _maker(*, sharpen: bool = True, rank: int = 0) -> RealWorldLR:
    return RealWorldLR(
        scale=4, config=DegradationConfig(), sharpen_targets=sharpen, seed=3, rank=rank, device=CPU
    )


def _batch() -> dict[str, torch.Tensor]:
    gt = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return {"lq": torch.zeros(2, 3, 8, 8), "gt": gt}


def test_the_lr_is_a_pure_function_of_the_batchs_place_in_the_run() -> None:
    batch = _batch()
    a = _maker()(batch, epoch=0, position=2)
    assert a["lq"].shape == (2, 3, 8, 8)
    assert not torch.equal(a["lq"], batch["lq"])  # the bicubic LR is replaced
    torch.testing.assert_close(_maker()(batch, epoch=0, position=2)["lq"], a["lq"], rtol=0, atol=0)
    others = [
        _maker()(batch, epoch=0, position=4)["lq"],
        _maker()(batch, epoch=1, position=2)["lq"],
        _maker(rank=1)(batch, epoch=0, position=2)["lq"],
    ]
    assert all(not torch.equal(o, a["lq"]) for o in others)


def test_targets_are_sharpened_only_when_asked() -> None:
    batch = _batch()
    torch.testing.assert_close(_maker()(batch, epoch=0, position=0)["gt"], usm_sharpen(batch["gt"]))
    torch.testing.assert_close(_maker(sharpen=False)(batch, epoch=0, position=0)["gt"], batch["gt"])


def _real_recipe() -> dict:
    return tiny_recipe(REPO / "configs" / "zoo" / "real_compact_psnr_x4.yaml", total_iters=4)


def test_recipe_rules() -> None:
    data = _real_recipe()
    assert recipe_from_dict(data).data.degradation == DegradationConfig()
    bad = _real_recipe()
    bad["data"].pop("degradation")
    with pytest.raises(ConfigError, match="sharpen_targets sharpens the targets"):
        recipe_from_dict(bad)
    bad = _real_recipe()
    bad["data"]["gt_size"] = 16
    with pytest.raises(ConfigError, match="gt_size >= 26 px"):
        recipe_from_dict(bad)
    bad = _real_recipe()
    bad["data"]["channels"] = "y"
    with pytest.raises(ConfigError, match="colour LR"):
        recipe_from_dict(bad)


@pytest.mark.parametrize("pipeline", ["device", "loader"])
def test_the_trainer_draws_real_world_pairs_that_a_resume_redraws(
    tiny_root: Path,  # noqa: F811
    tmp_path: Path,
    pipeline: str,
) -> None:
    data = _real_recipe()
    data["data"]["pipeline"] = pipeline
    recipe = recipe_from_dict(data)
    first = Trainer(recipe, run_options(tmp_path / "a", tiny_root))
    batches = list(itertools.islice(first.batches(), 3))
    for b in batches:
        assert b["lq"].shape[-1] * 4 == b["gt"].shape[-1] == 32
    # The same crops as the recipe without degradation draws: sharpened targets, new LR.
    clean = _real_recipe()
    clean["data"].update({"pipeline": pipeline, "degradation": None, "sharpen_targets": False})
    plain = next(Trainer(recipe_from_dict(clean), run_options(tmp_path / "b", tiny_root)).batches())
    torch.testing.assert_close(batches[0]["gt"], usm_sharpen(plain["gt"].contiguous()))
    assert (batches[0]["lq"] - plain["lq"]).abs().mean() > 1 / 255
    # A trainer restored to after the second batch draws the third one exactly.
    resumed = Trainer(recipe, run_options(tmp_path / "c", tiny_root))
    resumed.position = 2 * resumed.data.local_batch
    third = next(resumed.batches())
    torch.testing.assert_close(third["lq"], batches[2]["lq"], rtol=0, atol=0)
    torch.testing.assert_close(third["gt"], batches[2]["gt"], rtol=0, atol=0)
