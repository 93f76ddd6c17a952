"""Dense concatenations in one buffer: ESRGAN's dense blocks without their copies.

A dense block (``models/rrdbnet.py``) feeds each convolution the concatenation of everything
before it: ``cat(x, x1)``, ``cat(x, x1, x2)``, ... ``cat(x, x1, x2, x3, x4)``, so each ``torch.cat``
copies all the earlier features again (64, then 96, 128, 160 and 192 channels per block; about a
tenth of rrdbnet-6b-x4's CPU time). :func:`fuse_dense_concats` finds such chains in a graph
:func:`superres.inference.fusion.rewrite` made and replaces each with a :class:`DenseConcat`: one
channels_last buffer of the final width, each part written once into its channel slice, and each
convolution reading the slice before it in place (``F.conv2d`` reads a strided NHWC slice at the
speed of a dense tensor; the fused oneDNN op would copy it first, so these convolutions run
their activation as a separate in-place pass). The result equals the chain's to float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import fx, nn

from superres.inference.fusion import FusedConv2d

__all__ = ["DenseConcat", "fuse_dense_concats"]


class DenseConcat(nn.Module):
    """``cat(parts + [c1(cat(parts)), c2(cat(parts, c1)), ...], 1)`` in one buffer.

    Args:
        convs: the chain's convolutions, each keeping the spatial size (stride 1, "same"
            padding) and with no residual or row split.

    Shapes: ``parts``: ``(N, C_i, H, W)`` each -> ``(N, sum C_i + sum conv outputs, H, W)``,
    channels_last.
    """

    def __init__(self, convs: list[FusedConv2d]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.grown = sum(int(conv.weight.shape[0]) for conv in convs)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        first = parts[0]
        n, _, h, w = first.shape
        start = sum(int(p.shape[1]) for p in parts)
        buffer = torch.empty(
            (n, start + self.grown, h, w),
            dtype=first.dtype,
            device=first.device,
            memory_format=torch.channels_last,
        )
        offset = 0
        for part in parts:
            buffer[:, offset : offset + part.shape[1]].copy_(part)
            offset += part.shape[1]
        for conv in self.convs:
            assert isinstance(conv, FusedConv2d)
            out = conv.eager(buffer[:, :start])
            buffer[:, start : start + out.shape[1]].copy_(out)
            start += out.shape[1]
        return buffer

    def extra_repr(self) -> str:
        return f"convs={len(self.convs)}"


def _cat_parts(node: fx.Node) -> tuple[fx.Node, ...] | None:
    """The parts of ``torch.cat(parts, 1)`` (at least two graph values), else None."""
    args: list[object] = list(node.args)
    if node.op != "call_function" or node.target is not torch.cat or len(args) == 0:
        return None
    dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
    parts = args[0]
    if dim != 1 or not isinstance(parts, tuple | list) or len(parts) < 2:
        return None
    if not all(isinstance(p, fx.Node) for p in parts):
        return None
    return tuple(p for p in parts if isinstance(p, fx.Node))


def _same_size_conv(node: fx.Node, modules: Mapping[str, nn.Module]) -> FusedConv2d | None:
    """The fused convolution ``node`` calls on one input, when it keeps the spatial size."""
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        return None
    conv = modules.get(str(node.target))
    if not isinstance(conv, FusedConv2d) or conv.row_weight is not None or conv.residual:
        return None
    kh, kw = conv.weight.shape[-2:]
    same = conv.stride == [1, 1] and conv.dilation == [1, 1] and conv.groups == 1
    if not same or conv.padding != [kh // 2, kw // 2] or kh % 2 == 0 or kw % 2 == 0:
        return None
    return conv


_Step = tuple[fx.Node, FusedConv2d, fx.Node]  # (conv node, its module, the cat it grows)


def _chain(first: fx.Node, modules: Mapping[str, nn.Module]) -> list[_Step]:
    """From ``first = cat(parts)``: the steps ``cat(parts, conv(prev))`` that follow it, or
    none when a convolution's output is used outside the chain. It is all or nothing: every
    later cat holds every earlier output, so a chain cut short would still need them apart."""
    steps: list[_Step] = []
    current, parts = first, _cat_parts(first) or ()
    while len(current.users) == 1:
        (conv_node,) = current.users
        conv = _same_size_conv(conv_node, modules)
        if conv is None:
            break
        parts = (*parts, conv_node)
        nxt = next((c for c in conv_node.users if _cat_parts(c) == parts), None)
        if nxt is None:
            break
        steps.append((conv_node, conv, nxt))
        current = nxt
    cats = {cat for _, _, cat in steps}
    return steps if all(set(node.users) <= cats for node, _, _ in steps) else []


def fuse_dense_concats(gm: fx.GraphModule) -> int:
    """Replace each dense concatenation chain of ``gm`` (at least two growing cats) by one
    :class:`DenseConcat`; returns how many were replaced. ``gm`` is recompiled."""
    modules = dict(gm.named_modules())
    replaced = 0
    erased: set[fx.Node] = set()
    for node in list(gm.graph.nodes):
        parts = None if node in erased else _cat_parts(node)
        if parts is None:
            continue
        steps = _chain(node, modules)
        if not steps:
            continue
        name = f"dense_{replaced}"
        gm.add_submodule(name, DenseConcat([conv for _, conv, _ in steps]))
        last = steps[-1][2]
        with gm.graph.inserting_before(last):
            new = gm.graph.call_module(name, parts)
        last.replace_all_uses_with(new)
        for dead in [n for conv, _, cat in reversed(steps) for n in (cat, conv)] + [node]:
            gm.graph.erase_node(dead)
            erased.add(dead)
        replaced += 1
    if replaced:
        gm.graph.lint()
        gm.recompile()
    return replaced
