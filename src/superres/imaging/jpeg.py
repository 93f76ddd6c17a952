"""A JPEG round trip (encode + decode) in torch, integer for integer what libjpeg-turbo computes.

Real photos reach a super-resolution network JPEG-compressed, so degradation models need JPEG
artefacts; a Pillow/OpenCV call would pull the pipeline off the device (and out of the seeded
tensor world). This module reproduces, batched and on the input's device, the baseline
4:2:0 encoder and decoder that Pillow and OpenCV ship (libjpeg-turbo with its defaults):

1. RGB -> 8-bit YCbCr with libjpeg's 16-bit fixed-point coefficients (``jccolor.c``);
2. chroma 2x2 averaging with the alternating rounding bias 1, 2 (``jcsample.c``), the edges
   padded as ``jcprepct.c``/``jcsample.c`` pad them (replicated columns before averaging,
   replicated chroma rows after);
3. the "islow" integer forward DCT (``jfdctint.c``) and rounding quantisation with the standard
   Annex K tables scaled by quality as ``jpeg_set_quality`` scales them (clamped to 1..255, the
   baseline limit);
4. dequantisation and the islow inverse DCT (``jidctint.c``), clamped to 0..255;
5. "fancy" triangular chroma upsampling (``jdsample.c``, the decoder's default) and the
   fixed-point YCbCr -> RGB of ``jdcolor.c``.

Every step is integer arithmetic on int64 tensors, so the result does not depend on the float
dtype or the device and is not differentiable (it is a degradation, not a loss). Huffman coding
is lossless and skipped.

This module imports nothing of ours but ``superres.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from superres.errors import InvalidImageError

__all__ = ["jpeg_quality_tables", "jpeg_roundtrip"]

#: Annex K luminance and chrominance tables (natural order), as in libjpeg's ``jcparam.c``.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)

_SCALEBITS = 16  # the colour converters' fixed point
_ONE_HALF = 1 << (_SCALEBITS - 1)
_CONST_BITS = 13  # the islow DCTs' fixed point
_PASS1_BITS = 2


def _fix(x: float, bits: int = _SCALEBITS) -> int:
    """libjpeg's ``FIX(x)``: ``x`` in fixed point with ``bits`` fraction bits, rounded."""
    return int(x * (1 << bits) + 0.5)


# The islow constants, FIX(c) with CONST_BITS = 13 (jfdctint.c / jidctint.c).
_F0298, _F0390, _F0541, _F0765 = 2446, 3196, 4433, 6270
_F0899, _F1175, _F1501, _F1847 = 7373, 9633, 12299, 15137
_F1961, _F2053, _F2562, _F3072 = 16069, 16819, 20995, 25172


def _descale(x: torch.Tensor, n: int) -> torch.Tensor:
    """``DESCALE(x, n)``: divide by ``2**n`` rounding half up (an arithmetic shift)."""
    return (x + (1 << (n - 1))) >> n


def jpeg_quality_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The luma and chroma quantisation tables libjpeg writes for each ``quality``.

    Args:
        quality: int tensor ``(N,)`` of qualities 1..100.

    Returns:
        Two int64 tensors ``(N, 8, 8)`` (natural order): ``jpeg_quality_scaling`` (5000 / q
        below 50, 200 - 2 q from 50) applied as ``(t * scale + 50) // 100`` and clamped to
        1..255, as ``jpeg_set_quality(..., force_baseline=TRUE)`` does in Pillow and OpenCV.
    """
    q = quality.to(torch.int64).clamp(1, 100)
    scale = torch.where(q < 50, 5000 // q, 200 - 2 * q).view(-1, 1, 1)
    tables = []
    for base in (_LUMA_TABLE, _CHROMA_TABLE):
        t = torch.tensor(base, dtype=torch.int64, device=quality.device)
        tables.append(((t * scale + 50) // 100).clamp(1, 255))
    return tables[0], tables[1]


def _fdct_1d(v: list[torch.Tensor], shift: int, dc_shift: int) -> list[torch.Tensor]:
    """One pass of ``jpeg_fdct_islow`` over 8 samples; ``dc_shift`` > 0 scales the even-zero
    outputs up (pass 1), < 0 descales them (pass 2)."""
    tmp0, tmp7 = v[0] + v[7], v[0] - v[7]
    tmp1, tmp6 = v[1] + v[6], v[1] - v[6]
    tmp2, tmp5 = v[2] + v[5], v[2] - v[5]
    tmp3, tmp4 = v[3] + v[4], v[3] - v[4]
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    out: list[torch.Tensor] = [v[0]] * 8
    if dc_shift > 0:
        out[0], out[4] = (tmp10 + tmp11) << dc_shift, (tmp10 - tmp11) << dc_shift
    else:
        out[0], out[4] = _descale(tmp10 + tmp11, -dc_shift), _descale(tmp10 - tmp11, -dc_shift)
    z1 = (tmp12 + tmp13) * _F0541
    out[2] = _descale(z1 + tmp13 * _F0765, shift)
    out[6] = _descale(z1 - tmp12 * _F1847, shift)
    z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
    z5 = (z3 + z4) * _F1175
    tmp4, tmp5, tmp6, tmp7 = tmp4 * _F0298, tmp5 * _F2053, tmp6 * _F3072, tmp7 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    out[7] = _descale(tmp4 + z1 + z3, shift)
    out[5] = _descale(tmp5 + z2 + z4, shift)
    out[3] = _descale(tmp6 + z2 + z3, shift)
    out[1] = _descale(tmp7 + z1 + z4, shift)
    return out


def _idct_1d(v: list[torch.Tensor], shift: int) -> list[torch.Tensor]:
    """One pass of ``jpeg_idct_islow`` over 8 coefficients (already dequantised)."""
    z1 = (v[2] + v[6]) * _F0541
    tmp2 = z1 - v[6] * _F1847
    tmp3 = z1 + v[2] * _F0765
    tmp0 = (v[0] + v[4]) << _CONST_BITS
    tmp1 = (v[0] - v[4]) << _CONST_BITS
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    t0, t1, t2, t3 = v[7], v[5], v[3], v[1]
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * _F1175
    t0, t1, t2, t3 = t0 * _F0298, t1 * _F2053, t2 * _F3072, t3 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    t0, t1, t2, t3 = t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4
    return [
        _descale(tmp10 + t3, shift),
        _descale(tmp11 + t2, shift),
        _descale(tmp12 + t1, shift),
        _descale(tmp13 + t0, shift),
        _descale(tmp13 - t0, shift),
        _descale(tmp12 - t1, shift),
        _descale(tmp11 - t2, shift),
        _descale(tmp10 - t3, shift),
    ]


def _pad_edge(
    x: torch.Tensor, bottom: int, right: int, top: int = 0, left: int = 0
) -> torch.Tensor:
    """Pad the last two dimensions by replicating the edge samples (any dtype)."""
    h, w = x.shape[-2:]
    rows = torch.arange(-top, h + bottom, device=x.device).clamp(0, h - 1)
    cols = torch.arange(-left, w + right, device=x.device).clamp(0, w - 1)
    return x.index_select(-2, rows).index_select(-1, cols)


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` with H, W multiples of 8 -> ``(N, H/8, W/8, 8, 8)``."""
    n, h, w = plane.shape
    return plane.view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(blocks: torch.Tensor) -> torch.Tensor:
    n, bh, bw = blocks.shape[:3]
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, bh * 8, bw * 8)


def _code_plane(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Encode and decode one component: level shift, islow FDCT, quantise, dequantise, islow
    IDCT, clamp. ``plane`` int64 ``(N, H, W)`` (multiples of 8), ``table`` ``(N, 8, 8)``."""
    b = _blocks(plane - 128)
    rows = _fdct_1d(list(b.unbind(-1)), _CONST_BITS - _PASS1_BITS, _PASS1_BITS)
    b = torch.stack(rows, -1)
    cols = _fdct_1d(list(b.unbind(-2)), _CONST_BITS + _PASS1_BITS, -_PASS1_BITS)
    coef = torch.stack(cols, -2)  # 8x the orthonormal DCT
    divisor = (table * 8).view(-1, 1, 1, 8, 8)
    level = torch.sign(coef) * ((coef.abs() + divisor // 2) // divisor)
    deq = level * table.view(-1, 1, 1, 8, 8)
    cols = _idct_1d(list(deq.unbind(-2)), _CONST_BITS - _PASS1_BITS)
    b = torch.stack(cols, -2)
    rows = _idct_1d(list(b.unbind(-1)), _CONST_BITS + _PASS1_BITS + 3)
    return _range_limit(_unblocks(torch.stack(rows, -1)))


def _range_limit(v: torch.Tensor) -> torch.Tensor:
    """``IDCT_range_limit``: ``v + 128`` clamped to 0..255, looked up as libjpeg looks it up
    (``v & 1023`` in its table, so wild values wrap exactly as they do there)."""
    i = torch.arange(1024, device=v.device)
    table = torch.where(
        i < 128, i + 128, torch.where(i < 512, 255, torch.where(i < 896, 0, i - 896))
    )
    return table[v & 1023]


def _rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """``jccolor.c``: int64 ``(N, 3, H, W)`` RGB 0..255 -> 8-bit Y, Cb, Cr."""
    r, g, b = rgb.unbind(1)
    offset = (128 << _SCALEBITS) + _ONE_HALF - 1
    y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + _ONE_HALF) >> _SCALEBITS
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + offset) >> _SCALEBITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + offset) >> _SCALEBITS
    return torch.stack((y, cb, cr), 1)


def _ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """``jdcolor.c``'s fixed-point tables, range-limited to 0..255."""
    cb, cr = cb - 128, cr - 128
    r = y + ((_fix(1.402) * cr + _ONE_HALF) >> _SCALEBITS)
    g = y + ((-_fix(0.34414) * cb + _ONE_HALF - _fix(0.71414) * cr) >> _SCALEBITS)
    b = y + ((_fix(1.772) * cb + _ONE_HALF) >> _SCALEBITS)
    return torch.stack((r, g, b), 1).clamp(0, 255)


def _downsample_chroma(c: torch.Tensor, rows: int) -> torch.Tensor:
    """``h2v2_downsample``: 2x2 sums plus the bias 1, 2, 1, 2, ... along a row, shifted by 2;
    then the last real row replicated down to ``rows`` (``jcprepct.c``'s bottom padding)."""
    n, h, w = c.shape
    s = c.view(n, h // 2, 2, w // 2, 2).sum(dim=(2, 4))
    bias = torch.tensor([1, 2], dtype=c.dtype, device=c.device).repeat(w // 4)
    return _pad_edge((s + bias) >> 2, rows - h // 2, 0)


def _upsample_chroma(c: torch.Tensor) -> torch.Tensor:
    """``h2v2_fancy_upsample``: the triangle filter (3/4 nearer, 1/4 farther sample in each
    direction) with edges replicated and libjpeg's rounding biases 8 and 7. A plane 1 or 2
    samples wide is upsampled by plain replication, as ``jinit_upsampler`` chooses."""
    n, h, w = c.shape
    if w <= 2:
        return c.repeat_interleave(2, -2).repeat_interleave(2, -1)
    p = _pad_edge(c, 1, 1, 1, 1)
    mid = p[:, 1:-1]
    up = 3 * mid + p[:, :-2]  # output rows 2i: the row above is the farther one
    down = 3 * mid + p[:, 2:]  # output rows 2i+1
    out = []
    for colsum in (up, down):
        this = colsum[:, :, 1:-1]
        even = (3 * this + colsum[:, :, :-2] + 8) >> 4
        odd = (3 * this + colsum[:, :, 2:] + 7) >> 4
        out.append(torch.stack((even, odd), -1).reshape(n, h, 2 * w))
    return torch.stack(out, 2).reshape(n, 2 * h, 2 * w)


def _quality_tensor(quality: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    q = torch.as_tensor(quality).reshape(-1)
    if q.is_floating_point() and not torch.equal(q, q.round()):
        raise InvalidImageError(
            f"jpeg_roundtrip: quality must be whole numbers (libjpeg takes an int), got "
            f"{q.tolist()}; round it first"
        )
    q = q.to(torch.int64)
    if q.numel() == 1:
        q = q.expand(n)
    if q.numel() != n or bool(((q < 1) | (q > 100)).any()):
        raise InvalidImageError(
            f"jpeg_roundtrip: quality must be one value or one per image (N={n}), each 1..100; "
            f"got {q.tolist()}"
        )
    return q


def jpeg_roundtrip(
    image: torch.Tensor, quality: int | Sequence[int] | torch.Tensor
) -> torch.Tensor:
    """Encode ``image`` as a baseline 4:2:0 JPEG at ``quality`` and decode it, as Pillow does.

    Args:
        image: float ``(N, 3, H, W)`` RGB in [0, 1], any size >= 1 pixel; it is first rounded
            half-up to 8 bits (an encoder reads 8-bit samples).
        quality: one quality for the batch or one per image, integers 1..100 (Pillow's
            ``quality=``).

    Returns:
        The decoded image, same shape, dtype and device, on the 8-bit grid ``k / 255``.
        Pixel-identical to ``Image.open(io of im.save(..., "JPEG", quality=q, subsampling=2))``
        with libjpeg-turbo's islow DCT, the default of Pillow and OpenCV.
    """
    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise InvalidImageError(
            f"jpeg_roundtrip expects a float (N, 3, H, W) RGB tensor in [0, 1]; got "
            f"{image.dtype} of shape {tuple(image.shape)}"
        )
    n, _, h, w = image.shape
    q = _quality_tensor(quality, n).to(image.device)
    luma_table, chroma_table = jpeg_quality_tables(q)
    s = torch.floor(image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.int64)
    hc, wc = (h + 1) // 2, (w + 1) // 2  # the chroma planes' real size
    hp, wp = 16 * ((h + 15) // 16), 16 * ((w + 15) // 16)  # one MCU row/column covers 16
    # Columns are replicated before the colour conversion (jcsample's expand_right_edge);
    # rows only up to the 2-row group, the chroma rows below are copies of its last row.
    ycc = _rgb_to_ycc(_pad_edge(s, 2 * hc - h, wp - w))
    y = _code_plane(_pad_edge(ycc[:, 0], hp - 2 * hc, 0), luma_table)[:, :h, :w]
    chroma = []
    for c in (ycc[:, 1], ycc[:, 2]):
        coded = _code_plane(_downsample_chroma(c, hp // 2), chroma_table)
        chroma.append(_upsample_chroma(coded[:, :hc, :wc])[:, :h, :w])
    rgb = _ycc_to_rgb(y, chroma[0], chroma[1])
    return rgb.to(image.dtype) / 255.0
