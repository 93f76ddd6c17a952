"""Every registered model, tested for free: shapes, backward, scales, arguments, parameter counts.

The main tests loop over ``list_models()`` x each model's supported scales, so a newly registered
architecture is covered without a new test (it gets ``{}`` as its tiny arguments until it is added
to ``TINY``). Default-size models are only built to count parameters; forward passes use tiny
widths.
Also covers the discriminators and the VGG19 feature extractor, which are not in the SR registry.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import superres.models as models
from helpers import TINY, tiny_model
from superres.errors import (
    ConfigError,
    IncompatibleWeightsError,
    UnsupportedScaleError,
    WeightsNotFoundError,
)
from superres.models import (
    InvalidModelArgumentError,
    PatchDiscriminator,
    VGG19FeatureExtractor,
    VGGStyleDiscriminator,
    create_model,
    get_model_spec,
    list_models,
)
from superres.models.descriptor import describe_network
from superres.models.vgg import VGG19_LAYERS, vgg19_layer_index

# Scales tried for models that accept any positive integer (``ModelSpec.scales is None``).
ANY_SCALE = (2, 3, 4)


def _scales(name: str) -> tuple[int, ...]:
    scales = get_model_spec(name).scales
    return ANY_SCALE if scales is None else scales


CASES = [(name, scale) for name in list_models() for scale in _scales(name)]


def _tiny(name: str, scale: int, **extra: object) -> nn.Module:
    return tiny_model(name, scale=scale, **extra)


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- every registered model -----------------------------------------------------------------------


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize(("name", "scale"), CASES)
def test_forward_shape_and_backward(name: str, scale: int, in_channels: int) -> None:
    torch.manual_seed(0)
    model = _tiny(name, scale, in_channels=in_channels)
    assert model.scale == scale
    assert model.in_channels == in_channels
    # Every model declares the multiple its input H/W must be: 1 (any size) for most, 2 or 4 for
    # RRDBNet's pixel-unshuffled x2/x1 layout.
    multiple = describe_network(model).size_multiple
    assert multiple in (1, 2, 4)
    # Odd multiples, non-square: catches padding that silently crops or transposes H and W.
    h, w = 11 * multiple, 13 * multiple
    x = torch.rand(2, in_channels, h, w, requires_grad=True)
    out = model(x)
    assert out.shape == (2, in_channels, h * scale, w * scale)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", list_models())
def test_unsupported_scale_raises_at_build_time(name: str) -> None:
    spec = get_model_spec(name)
    bad = [0, -2] if spec.scales is None else [s for s in range(0, 10) if s not in spec.scales]
    for scale in bad:
        with pytest.raises(UnsupportedScaleError, match=f"scale {scale}"):
            _tiny(name, scale)
    if spec.scales is not None:
        # The constructor itself checks too (models are also built directly, not only by name),
        # and the message lists what is supported.
        supported = ", ".join(map(str, spec.scales))
        with pytest.raises(UnsupportedScaleError, match=re.escape(supported)):
            spec.builder(scale=bad[-1], **TINY.get(name, {}))


@pytest.mark.parametrize("name", list_models())
def test_misspelt_argument_is_an_error(name: str) -> None:
    with pytest.raises(InvalidModelArgumentError, match="num_block"):
        create_model(name, scale=_scales(name)[0], num_block=3)


@pytest.mark.parametrize("name", list_models())
def test_builders_are_keyword_only_and_typed(name: str) -> None:
    spec = get_model_spec(name)
    assert spec.summary
    for param in inspect.signature(spec.builder).parameters.values():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: {param.name}"
        assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name}"


@pytest.mark.parametrize(
    ("name", "kwargs", "expected", "approx"),
    [
        # The paper's 9-5-5 network on Y: 5,248 + 51,232 + 801.
        ("srcnn", {}, 57_281, None),
        ("srcnn", {"kernel_sizes": (9, 1, 5)}, 8_129, None),
        ("srcnn", {"in_channels": 3}, 69_251, None),
        ("srresnet", {}, 1_547_350, (1.54e6, 1.56e6)),
        ("edsr-baseline", {}, 1_517_571, (1.51e6, 1.53e6)),
        ("edsr", {}, 43_089_923, (42.5e6, 43.5e6)),
        ("rrdbnet", {}, 16_697_987, None),
    ],
)
def test_default_parameter_counts(
    name: str, kwargs: dict[str, object], expected: int, approx: tuple[float, float] | None
) -> None:
    # Built on the meta device: the real architecture, without allocating or initialising 43M
    # parameters.
    with torch.device("meta"):
        model = create_model(name, scale=4, **kwargs)
    count = _num_params(model)
    assert count == expected
    if approx is not None:
        assert approx[0] <= count <= approx[1]


def test_default_models_build_on_cpu() -> None:
    # One real (non-meta) build of the smaller defaults, with a forward on a tiny input.
    for name in ("srcnn", "srresnet", "edsr-baseline"):
        model = create_model(name, scale=2).eval()
        channels = int(getattr(model, "in_channels"))  # noqa: B009 - typed as Tensor | Module
        with torch.no_grad():
            out = model(torch.rand(1, channels, 6, 5))
        assert out.shape == (1, channels, 12, 10)


def test_out_channels_can_differ() -> None:
    model = create_model("edsr-baseline", scale=2, in_channels=1, out_channels=3, num_features=8)
    assert model(torch.rand(1, 1, 5, 7)).shape == (1, 3, 10, 14)


def test_rrdbnet_uses_basicsr_key_names() -> None:
    keys = set(create_model("rrdbnet", scale=4, num_blocks=2).state_dict())
    expected = {
        "conv_first.weight",
        "body.0.rdb1.conv1.weight",
        "body.1.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.weight",
    }
    assert expected <= keys
    assert "conv_up3.weight" not in keys
    assert "conv_up3.weight" in create_model("rrdbnet", scale=8, num_blocks=1).state_dict()


def test_edsr_uses_official_key_names_and_mean_shift() -> None:
    model = create_model("edsr-baseline", scale=4, num_blocks=2)
    keys = set(model.state_dict())
    assert {"head.0.weight", "body.0.body.0.weight", "body.2.weight", "tail.0.0.weight"} <= keys
    assert {"tail.0.2.weight", "tail.1.weight"} <= keys
    assert not any("mean" in k for k in keys)  # the mean shift is a constant, not a weight
    # With zero weights the network outputs the added-back mean: the DIV2K RGB mean.
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    out = model(torch.rand(1, 3, 4, 4))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.4488, 0.4371, 0.4040]))


# --- discriminators -------------------------------------------------------------------------------


def test_discriminators_are_exported_but_not_registered() -> None:
    assert models.VGGStyleDiscriminator is VGGStyleDiscriminator
    assert models.PatchDiscriminator is PatchDiscriminator
    names = list_models()
    assert not any("discriminator" in n or "vgg" in n for n in names)


@pytest.mark.parametrize("size", [96, 128])
@pytest.mark.parametrize("num_blocks", [4, 8])
def test_vgg_style_discriminator_any_size(num_blocks: int, size: int) -> None:
    torch.manual_seed(0)
    disc = VGGStyleDiscriminator(num_features=16, num_blocks=num_blocks)
    x = torch.rand(2, 3, size, size)
    logits = disc(x)
    assert logits.shape == (2, 1)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())


def test_vgg_style_discriminator_is_the_papers_at_96() -> None:
    disc = VGGStyleDiscriminator(num_features=8)
    widths = [m.out_channels for m in disc.features if isinstance(m, nn.Conv2d)]
    assert widths == [8, 8, 16, 16, 32, 32, 64, 64]
    # 96x96 -> 6x6 after four stride-2 blocks: the adaptive pool is the identity, as the paper.
    assert disc.features(torch.rand(1, 3, 96, 96)).shape[-2:] == (6, 6)
    assert [m.out_channels for m in VGGStyleDiscriminator(num_blocks=4).features.children()
            if isinstance(m, nn.Conv2d)] == [64, 64, 128, 128]  # fmt: skip
    with pytest.raises(ConfigError, match="num_blocks"):
        VGGStyleDiscriminator(num_blocks=5)


@pytest.mark.parametrize("use_spectral_norm", [False, True])
@pytest.mark.parametrize(("size", "out_size"), [(96, 10), (128, 14)])
def test_patch_discriminator_returns_a_logit_map(
    use_spectral_norm: bool, size: int, out_size: int
) -> None:
    torch.manual_seed(0)
    disc = PatchDiscriminator(num_features=8, use_spectral_norm=use_spectral_norm)
    logits = disc(torch.rand(2, 3, size, size + 32))
    assert logits.shape == (2, 1, out_size, out_size + 4)
    logits.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in disc.modules())
    assert has_bn is not use_spectral_norm


# --- VGG19 feature extractor ----------------------------------------------------------------------


def _torchvision_vgg19_state_dict() -> dict[str, torch.Tensor]:
    """A state dict with torchvision ``vgg19``'s keys and shapes; tensor ``k`` is filled with ``k``.

    The classifier's huge matrices are zero-stride views (no memory): they must be ignored anyway.
    """
    state: dict[str, torch.Tensor] = {}
    channels, fill = 3, 0.0
    widths = [64, 64, "M", 128, 128, "M"] + [256] * 4 + ["M"] + ([512] * 4 + ["M"]) * 2
    index = 0
    for item in widths:
        if item == "M":
            index += 1
            continue
        assert isinstance(item, int)
        fill += 1
        state[f"features.{index}.weight"] = torch.full((item, channels, 3, 3), fill)
        state[f"features.{index}.bias"] = torch.full((item,), fill)
        channels, index = item, index + 2
    for i, (out_f, in_f) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        state[f"classifier.{i}.weight"] = torch.zeros(1).expand(out_f, in_f)
        state[f"classifier.{i}.bias"] = torch.zeros(out_f)
    return state


@pytest.mark.parametrize(
    ("layer", "index"),
    [("relu5_4", 35), ("conv5_4", 34), ("relu2_2", 8), ("conv2_2", 7), ("conv1_1", 0),
     ("pool5", 36), ("pool4", 27), ("RELU3_4", 17)],
)  # fmt: skip
def test_vgg_layer_names_map_to_torchvision_indices(layer: str, index: int) -> None:
    assert vgg19_layer_index(layer) == index
    assert len(VGG19_LAYERS) == 37


def test_vgg_truncates_after_the_layer(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="superres.models.vgg"):
        extractor = VGG19FeatureExtractor(layer="relu2_2")
    assert len(extractor.features) == 9
    assert isinstance(extractor.features[-1], nn.ReLU)
    assert isinstance(VGG19FeatureExtractor(layer="conv2_2").features[-1], nn.Conv2d)
    out = extractor(torch.rand(2, 3, 16, 20))
    assert out.shape == (2, 128, 8, 10)
    with pytest.raises(ConfigError, match="relu6_1"):
        VGG19FeatureExtractor(layer="relu6_1")


def test_vgg_warns_and_says_so_without_weights(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="superres.models.vgg"):
        extractor = VGG19FeatureExtractor(layer="relu1_2")
    assert extractor.pretrained is False
    assert any("random weights" in r.getMessage() for r in caplog.records)


def test_vgg_loads_a_torchvision_state_dict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _torchvision_vgg19_state_dict()
    extractor = VGG19FeatureExtractor(layer="relu2_2")
    extractor.load_state_dict(state)  # strict; classifier.* and features.10+ ignored
    conv2_2 = extractor.features[7]
    assert isinstance(conv2_2, nn.Conv2d)
    assert conv2_2.weight.unique().tolist() == [4.0]  # the 4th convolution

    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="superres.models.vgg"):
        loaded = VGG19FeatureExtractor(layer="conv5_4", weights=path)
    assert loaded.pretrained is True
    assert not caplog.records
    assert len(loaded.features) == 35
    conv5_4 = loaded.features[34]
    assert isinstance(conv5_4, nn.Conv2d)
    assert conv5_4.bias is not None
    assert conv5_4.bias.unique().tolist() == [16.0]  # the 16th convolution


def test_vgg_rejects_other_state_dicts(tmp_path: Path) -> None:
    bn_state = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.1.weight": torch.ones(64)}
    with pytest.raises(IncompatibleWeightsError, match="VGG19"):
        VGG19FeatureExtractor(layer="relu1_2").load_state_dict(bn_state)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        VGG19FeatureExtractor(weights=tmp_path / "missing.pth")


def test_vgg_is_frozen_and_stays_in_eval_mode() -> None:
    extractor = VGG19FeatureExtractor(layer="relu1_2")
    assert not any(p.requires_grad for p in extractor.parameters())
    parent = nn.Sequential(nn.Conv2d(3, 3, 1), extractor)
    parent.train()
    assert parent.training
    assert not extractor.training
    assert not any(m.training for m in extractor.modules())
    # Frozen weights, but the gradient reaches the image (what a perceptual loss needs).
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    extractor(x).sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
