"""``--denoise``: a real-world model blended with its weak-degradation variant (weight space)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.errors import IncompatibleWeightsError, SuperresError
from superres.models import create_model
from superres.models.weights import load_model
from superres.models.weights_file import save_weights


def _edsr_file(path: Path, seed: int, *, num_features: int = 8) -> Path:
    torch.manual_seed(seed)
    net = create_model("edsr-baseline", scale=2, num_features=num_features, num_blocks=1)
    return save_weights(net, path)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    strong = _edsr_file(tmp_path / "strong.safetensors", 0)
    return strong, _edsr_file(tmp_path / "weak.safetensors", 1)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_model(weights=path).state_dict().items()}


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_denoise_is_the_weighted_sum_of_the_two_networks(
    pair: tuple[Path, Path], strength: float
) -> None:
    strong, weak = pair
    a, b = _params(strong), _params(weak)
    blended = load_model(weights=strong, denoise=strength, denoise_weights=weak).state_dict()
    assert blended.keys() == a.keys()
    for key, value in blended.items():
        if not value.is_floating_point():
            continue
        # Real-ESRGAN's dni: strength * strong + (1 - strength) * weak, per parameter.
        expected = strength * a[key].double() + (1.0 - strength) * b[key].double()
        torch.testing.assert_close(value.double(), expected, atol=1e-6, rtol=0)
    differs = any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert differs  # the two files really are different networks


def test_denoise_refuses_what_it_cannot_blend(pair: tuple[Path, Path], tmp_path: Path) -> None:
    strong, weak = pair
    with pytest.raises(SuperresError, match="--denoise-weights WEAK_FILE"):
        load_model(weights=strong, denoise=0.5)
    with pytest.raises(SuperresError, match=r"none ships with superres yet|one of"):
        load_model("edsr-baseline-x4", denoise=0.5)
    with pytest.raises(SuperresError, match=r"denoise must be a number in \[0, 1\], got 1.5"):
        load_model(weights=strong, denoise=1.5, denoise_weights=weak)
    with pytest.raises(SuperresError, match="need a strength"):
        load_model(weights=strong, denoise_weights=weak)
    with pytest.raises(SuperresError, match="cannot be combined"):
        load_model(weights=strong, denoise=0.5, denoise_weights=weak, realism=0.5)
    wider = _edsr_file(tmp_path / "wider.safetensors", 2, num_features=16)
    with pytest.raises(IncompatibleWeightsError, match="weak-degradation variant"):
        load_model(weights=strong, denoise=0.5, denoise_weights=wider)


def test_upscale_command_blends_and_says_so(
    pair: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    strong, weak = pair
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (10, 12, 3), np.uint8)).save(src)
    out = tmp_path / "out"
    out.mkdir()
    args = ["upscale", str(src), "-o", str(out), "--weights", str(strong), "--device", "cpu"]
    with caplog.at_level("INFO"):
        code = main([*args, "-dn", "0.25", "--denoise-weights", str(weak), "--precision", "fp32"])
    assert code == 0
    assert "denoise 0.25" in caplog.text
    written = np.asarray(Image.open(out / "in_x2.png"))
    assert written.shape == (20, 24, 3)
    # The same pixels as the blend built through the library.
    net = load_model(weights=strong, denoise=0.25, denoise_weights=weak)
    with torch.no_grad():
        x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255
        expected = (net(x).clamp(0, 1) * 255).round().squeeze(0).permute(1, 2, 0).byte().numpy()
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    assert main([*args, "--denoise", "0.5"]) == 1  # no weak variant: refused, nothing written
    assert sorted(p.name for p in out.iterdir()) == ["in_x2.png"]


@pytest.mark.parametrize("flag", ["--denoise", "-dn", "--realism"])
@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_strengths_outside_zero_to_one_are_usage_errors(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(tmp_path / "in.png"), flag, value])
    assert exit_info.value.code == 2
    assert "expected a number in [0, 1]" in capsys.readouterr().err
