"""Third-party checkpoints -> (architecture, constructor kwargs, a state dict with our key names).

A checkpoint written by another code base is first unwrapped
(:func:`superres.models.checkpoint.unwrap_state_dict`: containers such as BasicSR's
``params_ema`` and ``module.`` prefixes), then its
layout is recognised from key names and tensor shapes, its hyperparameters are read off the shapes,
and its keys are renamed to ours (:func:`convert_state_dict`). No code from the other project is
needed and nothing is unpickled beyond tensors (the caller loads ``.pth`` files with
``torch.load(..., weights_only=True)``).

Layouts recognised (:data:`LAYOUTS`, tried in this order):

``superres``
    our own key names, for plain ``torch.save(model.state_dict())`` files and safetensors files
    without our metadata: SRResNet (``conv_first``, ``prelu_first``, ``body.N.conv1``,
    ``upsample.0``), EDSR (``head.0``, ``body.N.body.0``, ``tail.0.0``, ``tail.1``), RRDBNet
    (BasicSR's names, below) and SRCNN (``conv1``-``conv3``). What shapes cannot tell takes a
    default: SRResNet's ``output_activation`` is ``"none"``, EDSR's ``img_range`` 1 and its
    ``res_scale`` as below, and SRCNN's scale must be passed. Files written by
    :func:`superres.models.weights.save_weights` carry all of it.
``BasicSR RRDBNet``
    ESRGAN's generator as BasicSR and Real-ESRGAN save it (``RealESRGAN_x4plus.pth``,
    ``ESRGAN_SRx4_DF2KOST_official-ff704c30.pth``): ``conv_first``,
    ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
    ``conv_last``. These are our RRDBNet's names. Their x2 and x1 models (``RealESRGAN_x2plus.pth``)
    pixel-unshuffle the input first: ``conv_first`` takes ``in_channels * 4`` (x2) or ``* 16`` (x1)
    channels, read as our ``pixel_unshuffle=True``; two upsampling stages must follow.
``Real-ESRGAN SRVGGNetCompact``
    ``realesr-general-x4v3``, ``realesr-general-wdn-x4v3``, ``realesr-animevideov3``: only
    ``body.N`` keys, 3x3 convolutions at even N, PReLU slopes at odd N. ``num_features`` and
    ``in_channels`` come from ``body.0``, ``num_convs`` from the last index, the scale from the last
    convolution's ``in_channels * scale^2`` outputs. ReLU/LeakyReLU variants store no activation
    parameters, so the two cannot be told apart: they are refused with a message.
``ESRGAN (original)``
    the first release of xinntao/ESRGAN (``RRDB_ESRGAN_x4.pth``, ``RRDB_PSNR_x4.pth``) and the many
    community models in that format: a flat ``model`` Sequential, ``model.0`` = first conv,
    ``model.1.sub.N.RDB{1,2,3}.conv{1..5}.0``, ``model.1.sub.<num_blocks>`` = trunk conv, then per
    x2 stage an upsample + conv (``model.3``, ``model.6``, ...), then ``conv_hr`` and ``conv_last``
    at the last two even indices (``model.8``, ``model.10`` at x4).
``ESRGAN (2019)``
    xinntao/ESRGAN after its 2019 rewrite: ``conv_first``, ``RRDB_trunk.N.RDB1.conv1``,
    ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``, ``conv_last``.
``EDSR (official)``
    sanghyun-son/EDSR-PyTorch: our EDSR's key names plus the ``sub_mean``/``add_mean`` 1x1
    convolutions. Their bias is ``-rgb_range * mean``: the DIV2K mean is checked and ``rgb_range``
    (255 for the published models) becomes our ``img_range``.
``BasicSR EDSR``
    ``conv_first``, ``body.N.conv1``/``conv2``, ``conv_after_body``, ``upsample.0`` (``.2`` ...),
    ``conv_last``; BasicSR trains every EDSR with ``img_range=255`` and the DIV2K mean, which are
    not stored in the file and are assumed.
``leftthomas SRGAN``
    the generator of leftthomas/SRGAN (``netG_epoch_4_100.pth``): ``block1`` = 9x9 conv + PReLU,
    ``block2`` ... ``block<K+1>`` = K residual blocks (``conv1``, ``bn1``, ``prelu``, ``conv2``,
    ``bn2``; convolutions with biases), ``block<K+2>`` = 3x3 conv + PReLU (early versions) or + BN
    (later ones), ``block<K+3>`` = x2 upsample blocks (``conv`` -> PixelShuffle(2) -> ``prelu``) and
    a final 9x9 conv; the output is ``(tanh(y) + 1) / 2``. Mapped onto our SRResNet with
    ``conv_bias=True``, ``body_tail``, ``output_activation="tanh"``.

EDSR's residual scaling is not stored in any checkpoint: 0.1 is assumed for 256 or more features
(EDSR, the only published configuration that uses it) and 1.0 otherwise (EDSR-baseline).

Recognised but refused: BasicSR's MSRResNet (``conv_first``, ``body.N.conv1``, ``upconv1``,
``conv_hr``): a different network (3x3 head, no batch norm, no long skip, bilinear global residual)
that superres does not implement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from superres.errors import IncompatibleWeightsError
from superres.models.checkpoint import (
    CONTAINER_KEYS,
    ConvertedWeights,
    Layout,
    StateDict,
    describe_keys,
    key_indices,
    pixel_shuffle_scale,
    tensor_shape,
    unwrap_state_dict,
)
from superres.models.edsr import DIV2K_RGB_MEAN

__all__ = [
    "CONTAINER_KEYS",
    "LAYOUTS",
    "ConvertedWeights",
    "Layout",
    "convert_state_dict",
    "describe_keys",
    "unwrap_state_dict",
]

# --- helpers --------------------------------------------------------------------------------------


def _with_out_channels(kwargs: dict[str, Any], out_channels: int) -> dict[str, Any]:
    if out_channels != kwargs["in_channels"]:
        kwargs["out_channels"] = out_channels
    return kwargs


# --- superres (our own key names) -----------------------------------------------------------------


def _is_srresnet(state: Mapping[str, torch.Tensor]) -> bool:
    return {"conv_first.weight", "prelu_first.weight", "conv_last.weight"} <= state.keys() and any(
        k.startswith("upsample.") for k in state
    )


def _convert_srresnet(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    del hint
    first = tensor_shape(state, "conv_first.weight", source)
    num_features, in_channels = first[0], first[1]
    ups = [f"upsample.{i}.weight" for i in key_indices(state, r"upsample\.(\d+)\.weight")]
    ups = [k for k in ups if state[k].dim() == 4]  # PReLU slopes are 1-D
    use_bn = "body.0.bn1.weight" in state
    kwargs: dict[str, Any] = {
        "scale": pixel_shuffle_scale(state, ups, num_features, source),
        "in_channels": in_channels,
        "num_features": num_features,
        "num_blocks": len(key_indices(state, r"body\.(\d+)\.conv1\.weight")),
        "use_batchnorm": use_bn,
        "conv_bias": use_bn and "body.0.conv1.bias" in state,
        "body_tail": "prelu" if "act_body.weight" in state else "batchnorm",
    }
    out = _with_out_channels(kwargs, tensor_shape(state, "conv_last.weight", source)[0])
    return ConvertedWeights("srresnet", out, state, "superres SRResNet")


def _is_edsr(state: Mapping[str, torch.Tensor]) -> bool:
    return {"head.0.weight", "body.0.body.0.weight", "tail.1.weight"} <= state.keys()


def _edsr_res_scale(num_features: int) -> tuple[str, float]:
    # Not stored anywhere: EDSR (256 features) is the only published configuration with 0.1.
    return ("edsr", 0.1) if num_features >= 256 else ("edsr-baseline", 1.0)


def _convert_edsr(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    del hint
    state = dict(state)
    img_range = 1.0
    layout = "superres EDSR"
    if "sub_mean.bias" in state:
        layout = "EDSR (official)"
        img_range = _official_rgb_range(state, source)
        for key in ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"):
            state.pop(key, None)
    head = tensor_shape(state, "head.0.weight", source)
    num_features, in_channels = head[0], head[1]
    num_blocks = len(key_indices(state, r"body\.(\d+)\.body\.0\.weight"))
    ups = [f"tail.0.{i}.weight" for i in key_indices(state, r"tail\.0\.(\d+)\.weight")]
    arch, res_scale = _edsr_res_scale(num_features)
    kwargs: dict[str, Any] = {
        "scale": pixel_shuffle_scale(state, ups, num_features, source),
        "in_channels": in_channels,
        "num_features": num_features,
        "num_blocks": num_blocks,
        "res_scale": res_scale,
        "img_range": img_range,
    }
    out = _with_out_channels(kwargs, tensor_shape(state, "tail.1.weight", source)[0])
    return ConvertedWeights(arch, out, state, layout)


def _official_rgb_range(state: Mapping[str, torch.Tensor], source: str) -> float:
    """EDSR-PyTorch's MeanShift: weight = I / std, bias = -rgb_range * mean / std (std = 1)."""
    bias = state["sub_mean.bias"].double().flatten()
    weight = state.get("sub_mean.weight")
    mean = torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float64)
    identity = weight is not None and torch.allclose(
        weight.double().flatten(1), torch.eye(len(bias), dtype=torch.float64)
    )
    if len(bias) != 3 or not identity:
        raise IncompatibleWeightsError(
            f"{source}: EDSR sub_mean (bias of shape {tuple(bias.shape)}) is not the official "
            "3-channel mean shift with rgb_std = (1, 1, 1), the only one superres supports"
        )
    ratio = -bias / mean
    rgb_range = float(ratio.mean())
    if not torch.allclose(ratio, torch.full_like(ratio, rgb_range), rtol=1e-3):
        raise IncompatibleWeightsError(
            f"{source}: EDSR sub_mean bias {bias.tolist()} is not -rgb_range x the DIV2K mean "
            f"{DIV2K_RGB_MEAN}; superres's EDSR uses that mean"
        )
    return float(round(rgb_range)) if abs(rgb_range - round(rgb_range)) < 1e-3 else rgb_range


def _is_rrdbnet(state: Mapping[str, torch.Tensor]) -> bool:
    return {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight"} <= state.keys()


def _convert_rrdbnet(
    state: StateDict, hint: int | None, source: str, layout: str = "BasicSR RRDBNet"
) -> ConvertedWeights:
    del hint
    first = tensor_shape(state, "conv_first.weight", source)
    num_features, in_channels = first[0], first[1]
    out_channels = tensor_shape(state, "conv_last.weight", source)[0]
    num_up = len(key_indices(state, r"conv_up(\d+)\.weight"))
    kwargs: dict[str, Any] = {"scale": 2**num_up, "in_channels": in_channels}
    # BasicSR's x2/x1 layout: conv_first sees the input pixel-unshuffled by 2 (4x the channels)
    # or by 4 (16x), and two x2 stages follow, so the net scale is 4 / the unshuffle factor.
    ratio, rest = divmod(in_channels, max(out_channels, 1))
    unshuffle = {4: 2, 16: 4}.get(ratio) if rest == 0 else None
    if unshuffle is not None:
        if num_up != 2:
            raise IncompatibleWeightsError(
                f"{source}: a {layout} model with a pixel-unshuffled input (conv_first takes "
                f"{in_channels} = {out_channels} x {unshuffle**2} channels) has {num_up} "
                "upsampling convolutions (conv_upN), expected conv_up1 and conv_up2"
            )
        kwargs = {"scale": 4 // unshuffle, "in_channels": out_channels, "pixel_unshuffle": True}
    kwargs |= {
        "num_features": num_features,
        "num_blocks": len(key_indices(state, r"body\.(\d+)\.rdb1\.conv1\.weight")),
        "num_grow_ch": tensor_shape(state, "body.0.rdb1.conv1.weight", source)[0],
    }
    return ConvertedWeights("rrdbnet", _with_out_channels(kwargs, out_channels), state, layout)


_SRCNN_KEYS = {f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}


def _is_srcnn(state: Mapping[str, torch.Tensor]) -> bool:
    return set(state) == _SRCNN_KEYS


def _convert_srcnn(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    if hint is None:
        raise IncompatibleWeightsError(
            f"{source} holds SRCNN weights, which do not record their scale (SRCNN runs on the "
            "bicubic-upscaled image); pass the scale it was trained for (scale=N, --scale N)"
        )
    shapes = [tensor_shape(state, f"conv{i}.weight", source) for i in (1, 2, 3)]
    kwargs: dict[str, Any] = {
        "scale": hint,
        "in_channels": shapes[0][1],
        "kernel_sizes": tuple(s[-1] for s in shapes),
        "num_features": (shapes[0][0], shapes[1][0]),
    }
    out = _with_out_channels(kwargs, shapes[2][0])
    return ConvertedWeights("srcnn", out, state, "superres SRCNN")


# --- ESRGAN (original xinntao/ESRGAN releases) ----------------------------------------------------


def _is_esrgan_original(state: Mapping[str, torch.Tensor]) -> bool:
    return "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state


def _convert_esrgan_original(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    blocks = key_indices(state, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight")
    num_blocks = len(blocks)
    top = key_indices(state, r"model\.(\d+)\.weight")  # model.0, model.3, ..., model.<last>
    last = top[-1]
    num_up, rest = divmod(last - 4, 3)
    if rest or num_up < 0 or top != [0, *(3 + 3 * i for i in range(num_up)), last - 2, last]:
        raise IncompatibleWeightsError(
            f"{source} looks like an original ESRGAN checkpoint, but its top-level convolutions "
            f"are model.{{{','.join(map(str, top))}}}.weight; expected model.0, one model.3+3i per "
            "x2 upsampling stage, then conv_hr and conv_last (model.8, model.10 at x4)"
        )
    renamed: StateDict = {}
    sub = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
    for key, value in state.items():
        if m := sub.fullmatch(key):
            n, rdb, c, kind = m.groups()
            renamed[f"body.{n}.rdb{rdb}.conv{c}.{kind}"] = value
            continue
        m = re.fullmatch(r"model\.(\d+)\.(weight|bias)", key) or re.fullmatch(
            rf"model\.1\.sub\.({num_blocks})\.(weight|bias)", key
        )
        if m is None:
            raise IncompatibleWeightsError(
                f"{source}: unexpected key {key!r} in an original ESRGAN checkpoint"
            )
        index, kind = int(m.group(1)), m.group(2)
        if key.startswith("model.1.sub."):
            name = "conv_body"
        elif index == 0:
            name = "conv_first"
        elif index == last:
            name = "conv_last"
        elif index == last - 2:
            name = "conv_hr"
        else:
            name = f"conv_up{(index - 3) // 3 + 1}"
        renamed[f"{name}.{kind}"] = value
    return _convert_rrdbnet(renamed, hint, source, layout="ESRGAN (original)")


def _is_esrgan_2019(state: Mapping[str, torch.Tensor]) -> bool:
    return "RRDB_trunk.0.RDB1.conv1.weight" in state and "trunk_conv.weight" in state


_ESRGAN_2019_NAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr"}


def _convert_esrgan_2019(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    renamed: StateDict = {}
    for key, value in state.items():
        new = key
        if m := re.fullmatch(r"RRDB_trunk\.(\d+)\.RDB(\d)\.(conv\d\.(?:weight|bias))", key):
            new = f"body.{m.group(1)}.rdb{m.group(2)}.{m.group(3)}"
        else:
            head, _, tail = key.partition(".")
            head = _ESRGAN_2019_NAMES.get(head, head)
            if m := re.fullmatch(r"upconv(\d)", head):
                head = f"conv_up{m.group(1)}"
            new = f"{head}.{tail}"
        renamed[new] = value
    return _convert_rrdbnet(renamed, hint, source, layout="ESRGAN (2019)")


# --- Real-ESRGAN SRVGGNetCompact ------------------------------------------------------------------

_COMPACT_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def _is_compact(state: Mapping[str, torch.Tensor]) -> bool:
    return "body.0.weight" in state and all(_COMPACT_KEY.fullmatch(k) for k in state)


def _convert_compact(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    """Hyperparameters from the first and last convolutions; every other shape is then held to
    the network built from them (:func:`superres.models.weights_check.compare_tables`)."""
    del hint
    first = tensor_shape(state, "body.0.weight", source)
    last = key_indices(state, r"body\.(\d+)\.weight")[-1]
    last_out = tensor_shape(state, f"body.{last}.weight", source)[0]
    in_channels = first[1] if len(first) == 4 else 0
    ratio, rest = divmod(last_out, max(in_channels, 1))
    scale = round(ratio**0.5)
    if last % 2 or last < 4 or not in_channels or rest or scale * scale != ratio:
        raise IncompatibleWeightsError(
            f"{source}: a Real-ESRGAN compact network has 3x3 convolutions at body.0, body.2, ..., "
            f"body.<2N+2>, the last with in_channels x scale^2 outputs; found body.0.weight "
            f"{first} and the last, body.{last}.weight, with {last_out} outputs"
        )
    # PReLU slopes sit at the odd indices; ReLU and LeakyReLU have no parameters.
    if not any(int(k.split(".")[1]) % 2 for k in state):
        raise IncompatibleWeightsError(
            f"{source} is a Real-ESRGAN compact network without PReLU weights: its activations "
            "(ReLU or LeakyReLU) leave no trace in the file to tell them apart. Build "
            "superres.models.SRVGGNetCompact(activation=...) yourself, load the state dict into "
            "it and save it with superres.save_weights"
        )
    kwargs: dict[str, Any] = {
        "scale": scale,
        "in_channels": in_channels,
        "num_features": first[0],
        "num_convs": last // 2 - 1,
        "activation": "prelu",
    }
    return ConvertedWeights("compact", kwargs, state, "Real-ESRGAN SRVGGNetCompact")


# --- BasicSR EDSR and MSRResNet -------------------------------------------------------------------


def _is_basicsr_edsr(state: Mapping[str, torch.Tensor]) -> bool:
    return {"conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight"} <= state.keys()


def _convert_basicsr_edsr(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    renamed: StateDict = {}
    num_blocks = len(key_indices(state, r"body\.(\d+)\.conv1\.weight"))
    for key, value in state.items():
        if m := re.fullmatch(r"body\.(\d+)\.conv([12])\.(weight|bias)", key):
            index = 0 if m.group(2) == "1" else 2
            renamed[f"body.{m.group(1)}.body.{index}.{m.group(3)}"] = value
            continue
        head, _, tail = key.partition(".")
        if head == "conv_first":
            renamed[f"head.0.{tail}"] = value
        elif head == "conv_after_body":
            renamed[f"body.{num_blocks}.{tail}"] = value
        elif head == "upsample":
            renamed[f"tail.0.{tail}"] = value
        elif head == "conv_last":
            renamed[f"tail.1.{tail}"] = value
        else:
            raise IncompatibleWeightsError(
                f"{source}: unexpected key {key!r} in a BasicSR EDSR checkpoint"
            )
    converted = _convert_edsr(renamed, hint, source)
    # BasicSR's EDSR options all use img_range=255 (not stored in the checkpoint).
    kwargs = {**converted.kwargs, "img_range": 255.0}
    return ConvertedWeights(converted.architecture, kwargs, converted.state_dict, "BasicSR EDSR")


def _is_msrresnet(state: Mapping[str, torch.Tensor]) -> bool:
    return {"conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight"} <= (
        state.keys()
    )


def _refuse_msrresnet(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    del state, hint
    raise IncompatibleWeightsError(
        f"{source} is a BasicSR MSRResNet checkpoint (conv_first, body.N.conv1, upconv1, "
        "conv_hr): a different network from SRResNet (3x3 head, LeakyReLU, no batch norm, no "
        "long skip, bilinear global residual) that superres does not implement"
    )


# --- leftthomas/SRGAN -----------------------------------------------------------------------------


def _is_leftthomas(state: Mapping[str, torch.Tensor]) -> bool:
    return {"block1.0.weight", "block1.1.weight", "block2.conv1.weight"} <= state.keys()


def _convert_leftthomas(state: StateDict, hint: int | None, source: str) -> ConvertedWeights:
    del hint
    residual = key_indices(state, r"block(\d+)\.conv1\.weight")
    num_blocks = len(residual)
    if residual != list(range(2, 2 + num_blocks)):
        raise IncompatibleWeightsError(
            f"{source}: leftthomas SRGAN residual blocks are block{residual}, expected "
            f"block2 ... block{num_blocks + 1}"
        )
    tail_block, up_block = num_blocks + 2, num_blocks + 3
    ups = key_indices(state, rf"block{up_block}\.(\d+)\.conv\.weight")
    final = len(ups)
    if ups != list(range(final)) or f"block{up_block}.{final}.weight" not in state:
        raise IncompatibleWeightsError(
            f"{source}: expected block{up_block}.0.conv ... block{up_block}.{final - 1}.conv "
            f"(upsampling) and block{up_block}.{final}.weight (last conv) in a leftthomas SRGAN "
            "generator"
        )
    tail_bn = f"block{tail_block}.1.running_mean" in state
    t, u = tail_block, up_block
    rules = [
        (r"block1\.0\.(weight|bias)", lambda m: f"conv_first.{m[1]}"),
        (r"block1\.1\.weight", lambda m: "prelu_first.weight"),
        (
            r"block(\d+)\.((?:conv|bn)[12]|prelu)\.(\w+)",
            lambda m: f"body.{int(m[1]) - 2}.{m[2]}.{m[3]}" if 2 <= int(m[1]) < t else None,
        ),
        (rf"block{t}\.0\.(weight|bias)", lambda m: f"conv_body.{m[1]}"),
        (rf"block{t}\.1\.(\w+)", lambda m: f"{'bn_body' if tail_bn else 'act_body'}.{m[1]}"),
        (rf"block{u}\.(\d+)\.conv\.(weight|bias)", lambda m: f"upsample.{3 * int(m[1])}.{m[2]}"),
        (rf"block{u}\.(\d+)\.prelu\.weight", lambda m: f"upsample.{3 * int(m[1]) + 2}.weight"),
        (rf"block{u}\.{final}\.(weight|bias)", lambda m: f"conv_last.{m[1]}"),
    ]
    renamed: StateDict = {}
    for key, value in state.items():
        new = next((name(m) for pattern, name in rules if (m := re.fullmatch(pattern, key))), None)
        if new is None:
            raise IncompatibleWeightsError(
                f"{source}: unexpected key {key!r} in a leftthomas SRGAN generator with "
                f"{num_blocks} residual blocks"
            )
        renamed[new] = value
    first = tensor_shape(renamed, "conv_first.weight", source)
    num_features = first[0]
    up_keys = [f"upsample.{3 * i}.weight" for i in range(final)]
    kwargs: dict[str, Any] = {
        "scale": pixel_shuffle_scale(renamed, up_keys, num_features, source),
        "in_channels": first[1],
        "num_features": num_features,
        "num_blocks": num_blocks,
        "use_batchnorm": "body.0.bn1.weight" in renamed,
        "conv_bias": "body.0.conv1.bias" in renamed,
        "body_tail": "batchnorm" if tail_bn else "prelu",
        "output_activation": "tanh",
    }
    out = _with_out_channels(kwargs, tensor_shape(renamed, "conv_last.weight", source)[0])
    return ConvertedWeights("srresnet", out, renamed, "leftthomas SRGAN")


# --- the table ------------------------------------------------------------------------------------


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "BasicSR RRDBNet",
        "conv_first, body.N.rdb1.conv1, conv_up1 (also Real-ESRGAN and superres rrdbnet)",
        _is_rrdbnet,
        _convert_rrdbnet,
    ),
    Layout(
        "Real-ESRGAN SRVGGNetCompact",
        "body.0 ... body.<2N+2> only, PReLU slopes at the odd indices (realesr-general-x4v3)",
        _is_compact,
        _convert_compact,
    ),
    Layout(
        "ESRGAN (original)",
        "model.0, model.1.sub.N.RDB1.conv1.0, model.3",
        _is_esrgan_original,
        _convert_esrgan_original,
    ),
    Layout(
        "ESRGAN (2019)",
        "RRDB_trunk.N.RDB1.conv1, trunk_conv, upconv1, HRconv",
        _is_esrgan_2019,
        _convert_esrgan_2019,
    ),
    Layout(
        "superres SRResNet",
        "conv_first, prelu_first, body.N.conv1, upsample.0",
        _is_srresnet,
        _convert_srresnet,
    ),
    Layout(
        "EDSR (official)",
        "head.0, body.N.body.0, tail.0.0, tail.1, sub_mean (also superres edsr)",
        _is_edsr,
        _convert_edsr,
    ),
    Layout(
        "BasicSR EDSR",
        "conv_first, body.N.conv1, conv_after_body, upsample.0",
        _is_basicsr_edsr,
        _convert_basicsr_edsr,
    ),
    Layout(
        "BasicSR MSRResNet",
        "conv_first, body.N.conv1, upconv1, conv_hr: recognised, not supported",
        _is_msrresnet,
        _refuse_msrresnet,
    ),
    Layout(
        "leftthomas SRGAN",
        "block1.0, block2.conv1, ..., block8.0.conv",
        _is_leftthomas,
        _convert_leftthomas,
    ),
    Layout("superres SRCNN", "conv1, conv2, conv3 only", _is_srcnn, _convert_srcnn),
)


def convert_state_dict(
    state: Mapping[str, torch.Tensor], *, scale: int | None = None, source: str = "the state dict"
) -> ConvertedWeights:
    """Recognise the layout of ``state`` and translate it to one of our architectures.

    Args:
        state: a flat state dict (see :func:`unwrap_state_dict` for containers); ``module.``
            prefixes are stripped here too.
        scale: the scale to use for layouts that do not record one (SRCNN); ignored otherwise
            (the caller compares it with the result's ``kwargs["scale"]``).
        source: how to name the checkpoint in error messages (usually its path).

    Raises:
        IncompatibleWeightsError: the layout is not recognised (the message lists a few keys and
            the supported layouts), is recognised but not supported, or is inconsistent.
    """
    flat = unwrap_state_dict(dict(state), source=source)
    for layout in LAYOUTS:
        if layout.matches(flat):
            return layout.convert(flat, scale, source)
    supported = "; ".join(f"{layout.name} [{layout.description}]" for layout in LAYOUTS)
    raise IncompatibleWeightsError(
        f"cannot recognise the layout of {source}: it has {describe_keys(flat)}. Supported "
        f"layouts: {supported}. Rename its keys to one of these, or load it into a superres "
        "model yourself and save that with superres.save_weights"
    )
