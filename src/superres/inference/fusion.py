"""oneDNN fusion: the fused convolution and the ``torch.fx`` rewrite that produces it.

:func:`rewrite` (behind :func:`superres.inference.fast.fast_network`) traces an SR network and
returns a graph module that computes the same function:

1. batch norm (running statistics) and constant scalings (``conv(x) * 0.2``) are folded into the
   convolution before them (in float64, then rounded once);
2. activations (ReLU, LeakyReLU, single-slope PReLU, also across a PixelShuffle, with which they
   commute) and residual additions become oneDNN post-ops of the convolution
   (``torch.ops.mkldnn._convolution_pointwise``): one pass over memory instead of three;
3. a convolution with a ``k x k`` kernel (``k >= 3``) and at most :data:`ROW_SPLIT_MAX_OUT`
   outputs (the reconstruction layers of SRResNet, SRCNN, EDSR, RRDBNet) becomes a ``k x 1``
   convolution to ``k * out`` channels (padded to a multiple of 8) followed by a grouped
   ``1 x k`` convolution that adds the ``k`` horizontally shifted partial sums: the same
   multiply-adds, vectorised over ``k`` times more output channels;
4. every activation is channels_last (NHWC), oneDNN's native layout, and a convolution feeding a
   pixel shuffle writes its channels in the order that makes the NHWC shuffle a block copy
   (:class:`PixelShuffleNHWC`);
5. with ``dtype=torch.bfloat16``, weights and activations are bfloat16 (oneDNN accumulates in
   float32); the output is float32 again.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from superres.imaging.resize import imresize
from superres.runtime import mkldnn_bf16_supported

__all__ = [
    "ROW_SPLIT_MAX_OUT",
    "FusedConv2d",
    "PixelShuffleNHWC",
    "rewrite",
]

#: Convolutions with at most this many output channels and a kernel of 3 or more are split into
#: rows (step 3 of the module docstring).
ROW_SPLIT_MAX_OUT = 4


# --- the fused convolution ------------------------------------------------------------------------


def _mkldnn_pointwise() -> Any:
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_POINTWISE = _mkldnn_pointwise()
# oneDNN refuses bfloat16 convolutions on CPUs without AVX512-BW/VL/DQ or AVX-NE-CONVERT; there the
# fused module runs its ops one by one (and bfloat16 is slow anyway: see cpu_has_native_bf16 in
# superres.runtime).
_ONEDNN_BF16 = _POINTWISE is not None and mkldnn_bf16_supported()


class FusedConv2d(nn.Module):
    """``act(conv(x) + residual)``: a convolution with its bias, residual add and activation fused.

    Built by :func:`fast_network` from an ``nn.Conv2d`` and what followed it; the weights are
    buffers (inference only). On the CPU with oneDNN this is one
    ``torch.ops.mkldnn._convolution_pointwise`` call; elsewhere the same ops one after another.

    With ``row_weight`` set, the convolution itself is preceded by a ``k x 1`` "row" convolution to
    ``k * out`` channels (``row_channels`` of them used) and ``weight`` is the grouped ``1 x k``
    convolution that adds the shifted partial sums (see the module docstring).

    Shapes: ``(N, C_in, H, W)`` (and ``residual`` of the output's shape) ->
    ``(N, C_out, H', W')``.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    row_weight: torch.Tensor | None

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        *,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        activation: str | None = None,
        slope: float = 0.0,
        residual: bool = False,
        row_weight: torch.Tensor | None = None,
        row_channels: int = 0,
        row_padding: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias)
        self.register_buffer(
            "row_weight",
            None
            if row_weight is None
            else row_weight.contiguous(memory_format=torch.channels_last),
        )
        self.stride = list(stride)
        self.padding = list(padding)
        self.dilation = list(dilation)
        self.groups = groups
        self.activation = activation
        self.slope = slope
        self.residual = residual
        self.row_channels = row_channels
        self.row_padding = list(row_padding)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.row_weight is not None:
            x = F.conv2d(x, self.row_weight, None, padding=self.row_padding)
            if x.shape[1] != self.row_channels:
                x = x[:, : self.row_channels]
        onednn = (
            _POINTWISE is not None
            and x.device.type == "cpu"
            and (x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and _ONEDNN_BF16))
            and (residual is None or self._same_shape(x, residual))
        )
        if onednn:
            return self._onednn(x, residual)
        y = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        if residual is not None:
            y = y + residual
        if self.activation == "relu":
            y = F.relu(y)
        elif self.activation == "leaky_relu":
            y = F.leaky_relu(y, self.slope)
        return y

    def _same_shape(self, x: torch.Tensor, residual: torch.Tensor) -> bool:
        """Whether ``residual`` is exactly the output's shape and dtype (no broadcasting), which
        the oneDNN post-op needs; otherwise the addition runs after the convolution."""
        out_hw = [
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip(
                x.shape[-2:],
                self.padding,
                self.dilation,
                self.weight.shape[-2:],
                self.stride,
                strict=True,
            )
        ]
        expected = (x.shape[0], self.weight.shape[0], *out_hw)
        return tuple(residual.shape) == expected and residual.dtype == x.dtype

    def _onednn(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        conv_args = (self.padding, self.stride, self.dilation, self.groups)
        scalars = [self.slope] if self.activation == "leaky_relu" else []
        if residual is None:
            return _POINTWISE(
                x, self.weight, self.bias, *conv_args, self.activation or "none", scalars, ""
            )
        return _POINTWISE.binary(
            x,
            residual,
            self.weight,
            self.bias,
            *conv_args,
            "add",
            None,
            self.activation,
            scalars,
            None,
        )

    def extra_repr(self) -> str:
        out, _, kh, kw = self.weight.shape
        text = f"out={out}, kernel=({kh}, {kw}), groups={self.groups}"
        if self.row_weight is not None:
            text += f", rows={self.row_weight.shape[2]}x1->{self.row_channels}"
        if self.residual:
            text += ", +residual"
        if self.activation:
            text += f", {self.activation}"
        return text


# --- the rewrite ----------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _activation(node: fx.Node, modules: Mapping[str, nn.Module]) -> tuple[str, float] | None:
    """``(kind, slope)`` when ``node`` is an activation oneDNN can fuse (one input), else None."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, nn.ReLU):
            return "relu", 0.0
        if isinstance(module, nn.LeakyReLU):
            return "leaky_relu", float(module.negative_slope)
        if isinstance(module, nn.PReLU) and module.weight.numel() == 1:
            return "leaky_relu", float(module.weight.detach().reshape(()))
        return None
    if node.op == "call_function" and node.target in (F.relu, torch.relu, torch.relu_):
        return ("relu", 0.0) if len(node.args) == 1 else None
    if node.op == "call_function" and node.target in (
        F.leaky_relu,
        torch.nn.functional.leaky_relu_,
    ):
        slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
        value = _number(slope)
        return None if value is None else ("leaky_relu", value)
    if node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1:
        return "relu", 0.0
    return None


def _shuffle_factor(node: fx.Node, modules: Mapping[str, nn.Module]) -> int | None:
    """The upscale factor when ``node`` is a pixel shuffle, else None."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        return module.upscale_factor if isinstance(module, nn.PixelShuffle) else None
    if node.op == "call_function" and node.target in (F.pixel_shuffle, torch.pixel_shuffle):
        factor = node.args[1] if len(node.args) > 1 else node.kwargs.get("upscale_factor")
        return factor if isinstance(factor, int) and not isinstance(factor, bool) else None
    return None


class PixelShuffleNHWC(nn.Module):
    """Pixel shuffle for channels_last tensors whose channels are ordered ``(i, j, c)``.

    ``nn.PixelShuffle`` takes input channel ``c * r * r + i * r + j`` to output pixel ``(i, j)`` of
    channel ``c``; on NHWC memory that gathers with a stride of ``r * r``. :func:`fast_network`
    reorders the producing convolution's output channels to ``(i * r + j) * C + c`` instead, so
    that each output pixel's ``C`` channels are one contiguous run: the shuffle is a block copy.

    Shapes: ``(N, r * r * C, H, W) -> (N, C, H * r, W * r)`` (channels_last).
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.upscale_factor
        n, crr, h, w = x.shape
        c = crr // (r * r)
        nhwc = x.permute(0, 2, 3, 1).reshape(n, h, w, r, r, c)
        out = nhwc.permute(0, 1, 3, 2, 4, 5).reshape(n, h * r, w * r, c)
        return out.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


_ADD = (operator.add, operator.iadd, torch.add)
_MUL = (operator.mul, operator.imul, torch.mul)


def _scale_factor(node: fx.Node, source: fx.Node) -> float | None:
    """``c`` when ``node`` is ``source * c``, ``c * source`` or ``source / d`` (c = 1 / d)."""
    if node.op != "call_function" or node.kwargs or len(node.args) != 2:
        return None
    a, b = node.args
    if node.target in _MUL:
        other = b if a is source else a if b is source else None
        return _number(other)
    if node.target in (operator.truediv, torch.div) and a is source:
        d = _number(b)
        return None if d is None or d == 0 else 1.0 / d
    return None


def _residual_operand(node: fx.Node, source: fx.Node) -> fx.Node | None:
    """The other operand when ``node`` is ``source + other`` (or ``other + source``)."""
    if node.op != "call_function" or node.target not in _ADD or node.kwargs:
        return None
    if len(node.args) != 2:
        return None
    a, b = node.args
    other = b if a is source else a if b is source else None
    return other if isinstance(other, fx.Node) and other is not source else None


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _fusable_conv(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and module.padding_mode == "zeros"
        and isinstance(module.padding, tuple)
    )


@dataclass
class _Plan:
    """What one convolution absorbs: folded affine maps, a residual and an activation."""

    weight: torch.Tensor  # float64
    bias: torch.Tensor  # float64
    activation: str | None = None
    slope: float = 0.0
    residual: fx.Node | None = None
    shuffle: fx.Node | None = None  # a pixel shuffle right after the fused convolution
    shuffle_factor: int = 0


def _fold_batchnorm(plan: _Plan, bn: nn.BatchNorm2d) -> bool:
    if bn.running_mean is None or bn.running_var is None:
        return False
    mean = bn.running_mean.detach().double()
    var = bn.running_var.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    plan.weight = plan.weight * scale[:, None, None, None]
    plan.bias = (plan.bias - mean) * scale + beta
    return True


def _absorb(
    node: fx.Node, conv: nn.Conv2d, modules: Mapping[str, nn.Module]
) -> tuple[_Plan, list[fx.Node]]:
    """Walk the single-user chain after a convolution; return the plan and the absorbed nodes."""
    out = conv.out_channels
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros(out).double()
    plan = _Plan(weight=conv.weight.detach().double(), bias=bias)
    chain: list[fx.Node] = []
    tail = node
    while (user := _only_user(tail)) is not None:
        affine_ok = plan.activation is None and plan.residual is None
        module = modules.get(str(user.target)) if user.op == "call_module" else None
        if isinstance(module, nn.Identity):
            pass
        elif isinstance(module, nn.BatchNorm2d) and affine_ok and not module.training:
            if not _fold_batchnorm(plan, module):
                break
        elif affine_ok and (factor := _scale_factor(user, tail)) is not None:
            plan.weight = plan.weight * factor
            plan.bias = plan.bias * factor
        elif affine_ok and (other := _residual_operand(user, tail)) is not None:
            plan.residual = other
        elif plan.activation is None and (act := _activation(user, modules)) is not None:
            plan.activation, plan.slope = act
        elif plan.residual is None and (factor := _shuffle_factor(user, modules)) is not None:
            plan.shuffle, plan.shuffle_factor = user, factor
            # act(shuffle(y)) == shuffle(act(y)) for element-wise activations with one slope.
            after = _only_user(user)
            act = _activation(after, modules) if after is not None else None
            if plan.activation is None and after is not None and act is not None:
                plan.activation, plan.slope = act
                after.replace_all_uses_with(user)
                after.graph.erase_node(after)
            break
        else:
            break
        chain.append(user)
        tail = user
    return plan, chain


def _row_split(
    weight: torch.Tensor, conv: nn.Conv2d
) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, int]] | None:
    """``(row_weight, selection_weight, row_channels, row_padding)`` for step 3, or None."""
    out, _cin, kh, kw = weight.shape
    if (
        kh != kw
        or kh < 3
        or out > ROW_SPLIT_MAX_OUT
        or conv.groups != 1
        or tuple(conv.stride) != (1, 1)
        or tuple(conv.dilation) != (1, 1)
        or tuple(conv.padding) != (kh // 2, kw // 2)
    ):
        return None
    k = kh
    used = out * k
    padded = -(-used // 8) * 8
    # Row channel o * k + j holds column j of output o's kernel: W[o, :, :, j] as a k x 1 kernel.
    rows = weight.permute(0, 3, 1, 2).reshape(used, weight.shape[1], k, 1)
    if padded > used:
        rows = torch.cat([rows, rows.new_zeros(padded - used, *rows.shape[1:])])
    # Group o adds its k row outputs, the j-th shifted by j - k // 2 columns.
    select = weight.new_zeros(out, k, 1, k)
    for j in range(k):
        select[:, j, 0, j] = 1.0
    return rows, select, used, (k // 2, 0)


def _reorder_for_shuffle(plan: _Plan) -> None:
    """Output channels ``c * r * r + p`` -> ``p * C + c`` (see :class:`PixelShuffleNHWC`)."""
    rr = plan.shuffle_factor**2
    out = plan.weight.shape[0]
    plan.weight = plan.weight.reshape(out // rr, rr, *plan.weight.shape[1:]).transpose(0, 1)
    plan.weight = plan.weight.reshape(out, *plan.weight.shape[2:])
    plan.bias = plan.bias.reshape(out // rr, rr).t().reshape(out)


def _build_fused(conv: nn.Conv2d, plan: _Plan, dtype: torch.dtype) -> FusedConv2d:
    split = _row_split(plan.weight, conv)
    common: dict[str, Any] = {
        "activation": plan.activation,
        "slope": plan.slope,
        "residual": plan.residual is not None,
    }
    bias = plan.bias.to(dtype)
    if split is not None:
        rows, select, used, row_padding = split
        k = plan.weight.shape[-1]
        return FusedConv2d(
            select.to(dtype),
            bias,
            stride=(1, 1),
            padding=(0, k // 2),
            dilation=(1, 1),
            groups=plan.weight.shape[0],
            row_weight=rows.to(dtype),
            row_channels=used,
            row_padding=row_padding,
            **common,
        )
    return FusedConv2d(
        plan.weight.to(dtype),
        bias,
        stride=tuple(conv.stride),  # pyright: ignore[reportArgumentType]
        padding=tuple(conv.padding),  # pyright: ignore[reportArgumentType]
        dilation=tuple(conv.dilation),  # pyright: ignore[reportArgumentType]
        groups=conv.groups,
        **common,
    )


def _fuse_scaled_adds(graph: fx.Graph) -> None:
    """``a + b * c`` (``c`` a number, ``b * c`` used once) -> ``torch.add(a, b, alpha=c)``."""
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _ADD or node.kwargs:
            continue
        if len(node.args) != 2:
            continue
        for i in (0, 1):
            prod = node.args[i]
            other = node.args[1 - i]
            if not isinstance(prod, fx.Node) or not isinstance(other, fx.Node):
                continue
            if len(prod.users) != 1 or prod.op != "call_function" or prod.target not in _MUL:
                continue
            if prod.kwargs or len(prod.args) != 2:
                continue
            a, b = prod.args
            tensor, factor = (a, _number(b)) if isinstance(a, fx.Node) else (b, _number(a))
            if factor is None or not isinstance(tensor, fx.Node):
                continue
            with graph.inserting_before(node):
                fused = graph.call_function(torch.add, (other, tensor), {"alpha": factor})
            node.replace_all_uses_with(fused)
            graph.erase_node(node)
            graph.erase_node(prod)
            break


class _Tracer(fx.Tracer):
    """Treats :func:`superres.imaging.resize.imresize` as one opaque call (SRCNN's first step)."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(imresize,))


def rewrite(model: nn.Module, dtype: torch.dtype) -> fx.GraphModule:
    graph = _Tracer().trace(model)
    gm = fx.GraphModule(model, graph)
    modules = dict(gm.named_modules())
    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        conv = modules.get(str(node.target))
        if conv is None or not _fusable_conv(conv) or len(node.args) != 1 or node.kwargs:
            continue
        assert isinstance(conv, nn.Conv2d)
        plan, chain = _absorb(node, conv, modules)
        if plan.shuffle is not None:
            _reorder_for_shuffle(plan)
        fused = _build_fused(conv, plan, dtype)
        name = f"fused_{count}"
        count += 1
        gm.add_submodule(name, fused)
        tail = chain[-1] if chain else node
        args: tuple[Any, ...] = (node.args[0],)
        if plan.residual is not None:
            args = (*args, plan.residual)
        with gm.graph.inserting_after(tail):
            new = gm.graph.call_module(name, args)
        tail.replace_all_uses_with(new)
        for dead in [*reversed(chain), node]:
            gm.graph.erase_node(dead)
        if plan.shuffle is not None:
            shuffle_name = f"shuffle_{count - 1}"
            gm.add_submodule(shuffle_name, PixelShuffleNHWC(plan.shuffle_factor))
            with gm.graph.inserting_after(plan.shuffle):
                shuffled = gm.graph.call_module(shuffle_name, (new,))
            plan.shuffle.replace_all_uses_with(shuffled)
            gm.graph.erase_node(plan.shuffle)
    _fuse_scaled_adds(gm.graph)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()
    return gm
