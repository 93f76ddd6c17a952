"""The :class:`Upscaler`: a super-resolution network applied to real images.

Everything between "a model" and "an image of any size, depth and mode" lives here, and nothing
else: device and precision are decided in :meth:`Upscaler.__init__` (library code below follows
``x.device``), images are tiled with :mod:`superres.inference.tiling` under a memory budget, and:

* **alpha**: colour is premultiplied by alpha before the network and divided by the (MATLAB-bicubic
  upscaled) alpha after it, so junk colour under transparent pixels cannot bleed into visible edges
  as a dark or coloured fringe. Where the upscaled alpha is below :data:`ALPHA_EPSILON` (invisible
  once written, even at 16 bits) the colour is set to 0 instead of dividing by ~0. Fully opaque
  alpha channels skip the premultiplication.
* **gray**: gray images run as three equal channels (RGB models) and are written gray again;
  one-channel models (e.g. SRCNN) get BT.601 luma Y and the chroma is upscaled with MATLAB bicubic,
  as in the SRCNN paper.
* **bit depth**: carried through in :class:`~superres.io.image.ImageData`; 16-bit sources keep
  their full precision (float32 holds 24 bits).
* **outscale**: after the network's integer scale, an exact MATLAB bicubic resize to
  ``(round(H * outscale), round(W * outscale))`` gives any final size.
* **backproject**: optional iterative back-projection (:func:`superres.imaging.backproject`) of the
  final image against the input.

Speed: on the CPU the network runs as :func:`superres.inference.fast.fast_network` rewrites it
(batch norm folded, activations and residual additions fused into oneDNN convolutions, few-output
large kernels split into rows, channels_last; bfloat16 where ``precision`` resolves to it). In
float32 that path equals the eager model to 1e-5; ``optimize=False`` runs the module as it is.

Memory: the output canvas (float32 on the CPU, 4 bytes per channel: 2.3 GB for a 4000 x 3000 RGB
input at x4) is the one unavoidable allocation, so an image whose canvases exceed the machine's
physical memory is refused before anything is allocated (:class:`CanvasTooLargeError`); per-tile
activations are bounded by the tile size, which ``tile="auto"`` derives from a memory budget
(:data:`CPU_TILE_MEMORY` on CPU, half the free memory on CUDA) and a probe of the network's
activation sizes, at most :data:`CPU_MAX_TILE` on the CPU, past which a larger tile is slower.
We accumulate in float32 rather than straight into uint8/uint16 because blending,
un-premultiplying, ``outscale`` and back-projection all need the unrounded values, and rounding
once, at the edge, is the project's contract.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import replace
from typing import overload

import torch
from torch import nn
from tqdm import tqdm

from superres.errors import InvalidImageError, InvalidNetworkError, SuperresError
from superres.imaging.backprojection import backproject as _backproject
from superres.imaging.color import rgb2ycbcr, ycbcr2rgb
from superres.imaging.resize import imresize
from superres.inference.fast import FastNetwork, bf16_verified, fast_network
from superres.inference.int8 import Int8Network, int8_network
from superres.inference.options import TileArg, UpscaleOptions
from superres.inference.tiling import InvalidTilingError, plan_tiles, run_tiled
from superres.io.image import ImageData
from superres.models.descriptor import NetworkDescriptor, describe_network
from superres.runtime import (
    PrecisionError,
    check_int8,
    precision_name,
    resolve_device,
    resolve_precision,
    retain_freed_memory,
)

__all__ = [
    "ALPHA_EPSILON",
    "CPU_MAX_TILE",
    "CPU_TILE_MEMORY",
    "CanvasTooLargeError",
    "TileMemoryError",
    "Upscaler",
    "estimate_activation_bytes",
]

logger = logging.getLogger(__name__)

#: Per-tile activation budget on CPU (and MPS) for ``tile="auto"``, in bytes: 3 GiB gives a
#: 64-feature x4 network 624-px tiles in bfloat16 (8 KiB planned per input pixel), 440 px in
#: float32 (16 KiB), close to :data:`CPU_MAX_TILE`.
CPU_TILE_MEMORY = 3 << 30
#: The largest ``tile="auto"`` on CPU (and MPS), in input pixels. Tiles share a 32-px overlap, so
#: larger tiles redo less of the image (1500x2000 in 360-px tiles: 1.18x its pixels; in 640-px
#: tiles, balanced to 528: 1.12x), but past this size the CPU's throughput per pixel falls
#: (edsr-baseline-x4 in bf16 on the AVX512-BF16 EPYC of BENCHMARKS.md: 311 ms per output
#: megapixel at 640 px, 409 at 768 px, 361 at 1024 px; 286 for one 256x256 image).
CPU_MAX_TILE = 640

#: Fraction of the free CUDA memory ``tile="auto"`` plans to use for activations.
CUDA_MEMORY_FRACTION = 0.5

#: Upscaled alpha below this is treated as fully transparent: colour 0 rather than colour / ~0.
#: Half an 8-bit step; such pixels write as alpha 0 in 8-bit files and 0..127 of 65535 in 16-bit.
ALPHA_EPSILON = 1.0 / 510.0

# Multiplier from the largest single activation to the peak live memory of a forward pass: the
# layer's input and output, a residual/skip tensor, and a backend copy (oneDNN reorders, cuDNN
# workspace). Measured on SRResNet/EDSR/RRDBNet on CPU: peak RSS growth 2.3-3.4x the largest one.
_ACTIVATION_FACTOR = 4.0
_PROBE_SIZE = 32
_MIN_AUTO_TILE = 64
_MAX_AUTO_TILE = 2048
# Runs of at least this many tiles get their own progress bar (on a terminal) when progress=True.
_TILE_BAR_MIN = 4


class TileMemoryError(SuperresError, MemoryError):
    """A tile did not fit in the device's memory."""


class CanvasTooLargeError(SuperresError, MemoryError):
    """One image's output canvases would not fit in this machine's memory (checked first)."""


def memory_limit() -> int | None:
    """The largest output canvas an image may need, in bytes: this machine's physical memory
    (``None`` where the platform does not say, and then nothing is refused)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def estimate_activation_bytes(
    model: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    *,
    in_channels: int,
    size_multiple: int = 1,
    probe: int = _PROBE_SIZE,
) -> float:
    """Peak activation memory of ``forward`` per input pixel, in bytes (an estimate).

    Runs ``forward`` once on a ``probe x probe`` zero image (rounded up to ``size_multiple``) with
    forward hooks on every leaf module of ``model``, takes the largest single output tensor (in
    its real dtype, so autocast is accounted for) and multiplies by a measured factor for what else
    is alive at that moment. Activations of convolutional SR networks grow linearly with the pixel
    count, so the figure scales to any tile size.
    """
    size = math.ceil(probe / size_multiple) * size_multiple
    largest = [0]

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        tensors = output if isinstance(output, tuple | list) else (output,)
        for t in tensors:
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel() * t.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in {*leaves, model}]
    try:
        forward(torch.zeros(1, in_channels, size, size))
    finally:
        for h in handles:
            h.remove()
    return _ACTIVATION_FACTOR * largest[0] / (size * size)


def _size(n: int) -> str:
    """Bytes in decimal GB, MB or kB (one decimal), as memory is sold and shown."""
    for unit, value in (("GB", 1e9), ("MB", 1e6)):
        if n >= value:
            return f"{n / value:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _check_model(model: object) -> NetworkDescriptor:
    """The descriptor of an SR model the Upscaler can run (RGB or Y), or a clear error."""
    described = describe_network(model)
    if described.in_channels not in (1, 3):
        raise InvalidNetworkError(
            f"the model takes {described.in_channels} channels; the Upscaler runs RGB (3) or Y (1) "
            "models"
        )
    return described


class Upscaler:
    """Run a super-resolution model on images of any size, bit depth and mode.

    Args:
        model: an SR network with ``scale``, ``in_channels`` (1 or 3) and optionally
            ``size_multiple`` attributes, as every superres model has. It is moved to ``device``
            and put in eval mode (in place, as ``nn.Module.to`` does).
        options: how to run it (device, precision, tiling, outscale, back-projection, ...):
            an :class:`~superres.inference.options.UpscaleOptions`; default ``UpscaleOptions()``.

    Example::

        up = Upscaler(model, options=UpscaleOptions(tile=256, precision="fp32"))

    Attributes:
        options: the options it runs with. scale, in_channels, size_multiple: the model's.
        device: the resolved device. tile: ``options.tile`` rounded to the size multiple.
        network: the module that actually runs (the model itself, or its :class:`FastNetwork`).
        autocast_dtype: the reduced precision in use (bfloat16/float16), ``None`` for float32.

    Raises:
        DeviceError, PrecisionError, SuperresError: bad device, precision, model or options.
    """

    def __init__(self, model: nn.Module, *, options: UpscaleOptions | None = None) -> None:
        options = UpscaleOptions() if options is None else options
        if not isinstance(options, UpscaleOptions):
            raise SuperresError(
                f"options must be an UpscaleOptions, got {type(options).__name__}; e.g. "
                "Upscaler(model, options=UpscaleOptions(tile=256))"
            )
        described = _check_model(model)
        self.options = options
        self.scale, self.in_channels = described.scale, described.in_channels
        self.size_multiple = described.size_multiple
        self.device = resolve_device(options.device)
        if self.device.type == "cpu":
            retain_freed_memory()
        int8 = options.precision == "int8"
        self.autocast_dtype: torch.dtype | None = None
        if int8:
            check_int8(self.device)
        else:
            self.autocast_dtype = resolve_precision(
                options.precision, self.device, bf16_verified=bf16_verified(model)
            )
            if precision_name(self.autocast_dtype) not in described.precisions:
                raise PrecisionError(
                    f"{type(model).__name__} runs in {', '.join(described.precisions)}, not "
                    f"{precision_name(self.autocast_dtype)}; pass precision='fp32'"
                )
        self.tile = self._round_tile(options.tile)
        self.model = model.to(self.device).eval()
        param = next(self.model.parameters(), None)
        self._param_dtype = param.dtype if param is not None else torch.float32
        self.network: nn.Module = self.model
        if int8:
            self.network = int8_network(self.model)
        elif options.optimize and self.device.type == "cpu":
            self.network = fast_network(self.model, dtype=self.autocast_dtype or torch.float32)
        self._auto_tile: int | None = None

    @property
    def execution_path(self) -> str:
        """How the network runs: ``"fused bf16"``, ``"channels_last fp32"``, ``"eager fp32"``..."""
        net, dtype = self.network, precision_name(self.autocast_dtype)
        if isinstance(net, Int8Network):
            return f"OpenVINO int8 ({net.inference_precision} elsewhere)"
        if isinstance(net, FastNetwork):
            return f"{'fused' if net.fused else 'channels_last'} {dtype}"
        return f"{'autocast' if self.autocast_dtype is not None else 'eager'} {dtype}"

    # --- options ---------------------------------------------------------------------------------

    def _round_tile(self, tile: TileArg) -> TileArg:
        """A tile size rounded down to the model's size multiple."""
        if not isinstance(tile, int):
            return tile
        rounded = tile - tile % self.size_multiple
        if rounded < self.size_multiple:
            raise SuperresError(
                f"tile {tile} is smaller than the model's size multiple {self.size_multiple}"
            )
        if rounded <= self.options.overlap:
            raise InvalidTilingError(
                f"tile ({rounded} px, rounded to the model's size multiple) must be larger "
                f"than the overlap ({self.options.overlap} px); use a larger --tile or a "
                "smaller --overlap"
            )
        return rounded

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The final ``(H, W)`` for an ``height x width`` input."""
        if self.options.outscale is None:
            return height * self.scale, width * self.scale
        # Half up (not Python's half-to-even round): 9 x 3.5 -> 32, like 10 x 3.5 -> 35.
        return (
            max(1, math.floor(height * self.options.outscale + 0.5)),
            max(1, math.floor(width * self.options.outscale + 0.5)),
        )

    def canvas_bytes(self, height: int, width: int, *, alpha: bool = False) -> int:
        """Bytes of the float32 CPU canvases an ``height x width`` image's output needs: the
        network's output (``scale`` times the input), its resized copy when ``outscale`` gives
        another size, and the upscaled alpha plane."""
        net = height * self.scale * width * self.scale
        out_h, out_w = self.output_size(height, width)
        final = out_h * out_w
        return 4 * (3 * net + (3 * final if final != net else 0) + (final if alpha else 0))

    def check_canvas(self, height: int, width: int, *, alpha: bool = False) -> None:
        """Refuse an ``height x width`` image whose output canvases (:meth:`canvas_bytes`) exceed
        this machine's memory (:func:`memory_limit`), before anything is allocated. Called on
        every image; callers that know the size from a file's header can call it before
        decoding (``read_image(path, check_size=upscaler.check_canvas)``).

        Raises:
            CanvasTooLargeError: naming the sizes, the gigabytes and the fix.
        """
        need, limit = self.canvas_bytes(height, width, alpha=alpha), memory_limit()
        if limit is None or need <= limit:
            return
        out_h, out_w = self.output_size(height, width)
        net = height * width * self.scale**2
        if out_h * out_w > net:
            fix = "use a smaller --outscale"
        else:
            fix = "upscale a smaller input (crop or downscale it first) or use a lower --scale"
            fix += " (x2 needs a quarter of it)" if self.scale > 2 else ""
        raise CanvasTooLargeError(
            f"the {width}x{height} input would become a {out_w}x{out_h} output needing "
            f"{_size(need)} of float32 canvas, more than this machine's {_size(limit)} of "
            f"memory; {fix}"
        )

    def tile_size(self) -> int | None:
        """The tile size used (input pixels), or ``None`` for whole images."""
        if self.tile is None or isinstance(self.tile, int):
            return self.tile
        if self._auto_tile is None:
            self._auto_tile = self._plan_auto_tile()
        return self._auto_tile

    def _memory_budget(self) -> int:
        if self.options.tile_memory is not None:
            return self.options.tile_memory
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            return int(free * CUDA_MEMORY_FRACTION)
        return CPU_TILE_MEMORY

    def _plan_auto_tile(self) -> int:
        network, forward = self.network, self._forward
        if isinstance(network, Int8Network):  # opaque to hooks: measure the model in bf16
            network, forward = self.model, self._bf16_forward
        with torch.inference_mode():
            per_pixel = estimate_activation_bytes(
                network, forward, in_channels=self.in_channels, size_multiple=self.size_multiple
            )
        budget = self._memory_budget()
        side = math.sqrt(budget / max(per_pixel * self.options.batch_size, 1e-9))
        step = math.lcm(8, self.size_multiple)
        low = math.ceil(max(_MIN_AUTO_TILE, 2 * self.options.overlap + step) / step) * step
        largest = _MAX_AUTO_TILE if self.device.type == "cuda" else CPU_MAX_TILE
        tile = max(low, min(largest, int(side) // step * step))
        logger.debug(
            "auto tile: %.0f bytes/pixel, budget %.0f MiB -> %d px",
            per_pixel,
            budget / 2**20,
            tile,
        )
        return tile

    # --- running the network ---------------------------------------------------------------------

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.device, non_blocking=True)
        if self.network is not self.model:  # the CPU fast path: float32 in and out
            return self.network(x)
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                return self.model(x)
        return self.model(x.to(self._param_dtype))

    def _bf16_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model under bf16 autocast: the int8 network's activation sizes, or larger."""
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            return self.model(x)

    def _run_tiles(self, x: torch.Tensor, tile: int | None) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        plan = plan_tiles(
            height, width, tile, self.options.overlap, multiple=self.size_multiple, stretch=True
        )
        count = len(plan)
        # None: tqdm draws only on a terminal, so a pipe or a log file gets no \r residue.
        disable = not self.options.progress or count < _TILE_BAR_MIN or None
        with tqdm(total=count, desc="tiles", unit="tile", leave=False, disable=disable) as bar:

            def advance(done: int) -> None:
                bar.update(done - bar.n)

            return run_tiled(
                self._forward,
                x,
                scale=self.scale,
                tile=tile,
                overlap=self.options.overlap,
                size_multiple=self.size_multiple,
                batch_size=self.options.batch_size,
                on_tile=advance,
            )

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """``(C, H, W)`` CPU float32 -> ``(C_out, H*s, W*s)`` CPU float32, tiled.

        On running out of memory with ``tile="auto"``, retries with half the tile size.
        """
        while True:
            tile = self.tile_size()
            try:
                return self._run_tiles(x, tile)
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                current = tile if tile is not None else max(int(x.shape[-2]), int(x.shape[-1]))
                step = math.lcm(8, self.size_multiple)
                smaller = current // 2 // step * step
                if self.tile == "auto" and smaller > self.options.overlap and smaller >= step:
                    logger.warning(
                        "out of memory with %d px tiles; retrying with %d px", current, smaller
                    )
                    self._auto_tile = smaller
                    continue
                raise TileMemoryError(
                    f"out of memory on {self.device} running {current} px tiles ({exc}); use a "
                    "smaller --tile (e.g. --tile 256), --precision fp16/bf16, or --device cpu"
                ) from None

    # --- images ----------------------------------------------------------------------------------

    @overload
    def __call__(self, image: ImageData) -> ImageData: ...

    @overload
    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, image: ImageData | torch.Tensor) -> ImageData | torch.Tensor:
        """Same as :meth:`upscale`."""
        return self.upscale(image)

    @overload
    def upscale(self, image: ImageData) -> ImageData: ...

    @overload
    def upscale(self, image: torch.Tensor) -> torch.Tensor: ...

    def upscale(self, image: ImageData | torch.Tensor) -> ImageData | torch.Tensor:
        """Upscale an :class:`ImageData` (from :func:`~superres.io.read_image`) or a tensor.

        Tensors are float ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] with ``C`` = 1 (gray),
        2 (gray + alpha), 3 (RGB) or 4 (RGBA); the result has the same layout, dtype and device.
        Results are clamped to [0, 1]; :class:`ImageData` keeps ``bit_depth`` and ``grayscale``.
        """
        if isinstance(image, ImageData):
            rgb, alpha = self._upscale_one(image.rgb, image.alpha)
            if image.grayscale:  # keep ImageData's promise: gray means three equal channels
                rgb = _luma(rgb).expand(3, -1, -1)
            return replace(image, rgb=rgb, alpha=alpha)
        if isinstance(image, torch.Tensor):
            return self._upscale_tensor(image)
        raise InvalidImageError(
            f"Upscaler takes an ImageData or a torch.Tensor, got {type(image).__name__}; for PIL "
            "images and numpy arrays use superres.upscale(...)"
        )

    def _upscale_tensor(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4):
            raise InvalidImageError(
                f"expected a float tensor (C, H, W) or (N, C, H, W) with C = 1, 2, 3 or 4, got "
                f"shape {tuple(image.shape)}"
            )
        if not image.is_floating_point():
            raise InvalidImageError(
                f"expected a float tensor in [0, 1], got {image.dtype}; divide by 255 first"
            )
        # NaN and infinities reach the extremes (NaN propagates through min/max): two reductions
        # in the image's own dtype, on any device (MPS has no float64), no image-sized mask.
        # Else the network would spread them over the output without a word.
        extremes = torch.aminmax(image) if image.numel() else None
        if extremes is not None and not all(math.isfinite(float(v)) for v in extremes):
            bad = int((~torch.isfinite(image)).sum())
            raise InvalidImageError(
                f"the image holds {bad} NaN or infinite value(s); find where they came from (a "
                "division by zero, an overflowing float16 step) or torch.nan_to_num it first"
            )
        if extremes is not None:
            _check_unit_range(float(extremes[0]), float(extremes[1]))
        batch = image if image.dim() == 4 else image[None]
        channels = int(batch.shape[1])
        results = []
        for item in batch.detach():
            item = item.to("cpu", torch.float32)
            colour = item[:1].expand(3, -1, -1) if channels <= 2 else item[:3]
            alpha = item[channels - 1 :] if channels in (2, 4) else None
            rgb, alpha_out = self._upscale_one(colour, alpha)
            planes = [_luma(rgb) if channels <= 2 else rgb]
            if alpha_out is not None:
                planes.append(alpha_out)
            results.append(torch.cat(planes) if len(planes) > 1 else planes[0])
        out = torch.stack(results) if image.dim() == 4 else results[0]
        return out.to(image.device, image.dtype)

    def _upscale_one(
        self, rgb: torch.Tensor, alpha: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(3, H, W)`` colour and ``(1, H, W)`` alpha -> the same at the output size."""
        height, width = int(rgb.shape[-2]), int(rgb.shape[-1])
        self.check_canvas(height, width, alpha=alpha is not None)
        target = self.output_size(height, width)
        with torch.inference_mode():
            rgb = rgb.to("cpu", torch.float32)
            if alpha is not None:
                alpha = alpha.to("cpu", torch.float32)
            premultiplied = alpha is not None and float(alpha.min()) < 1.0
            colour = rgb * alpha if premultiplied and alpha is not None else rgb
            if self.in_channels == 1:
                ycc = rgb2ycbcr(colour)
                luma = self._network(ycc[:1])
                chroma = imresize(ycc[1:], scale=float(self.scale))
                out = ycbcr2rgb(torch.cat([luma[:1], chroma]))
                del luma, chroma
            else:
                out = self._network(colour)
                if out.shape[0] != 3:
                    raise SuperresError(
                        f"the model returned {out.shape[0]} channels for an RGB input; expected 3"
                    )
            if tuple(out.shape[-2:]) != target:
                out = imresize(out, output_shape=target)
            if self.options.backproject:
                out = _backproject(
                    out,
                    colour,
                    iterations=self.options.backproject,
                    step=self.options.backproject_step,
                )
            alpha_out = None
            if alpha is not None:
                alpha_out = imresize(alpha, output_shape=target).clamp_(0.0, 1.0)
                if premultiplied:
                    _unpremultiply_(out, alpha_out)
            out.clamp_(0.0, 1.0)
        return out, alpha_out


# As the metrics' check: an unclamped network output overshoots [0, 1] a little and is taken as
# given (the result is clamped); values past this are on another scale (0-255), refused.
_RANGE_SLACK = 0.5


def _check_unit_range(low: float, high: float) -> None:
    """Upscaler inputs are float images in [0, 1]; a 0-255 one would come back white."""
    if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
        raise InvalidImageError(
            f"the image holds values in [{low:g}, {high:g}], far outside [0, 1], the range of "
            "float images; divide 0-255 values by 255 (65535 for 16-bit) first, or clamp(0, 1) them"
        )


def _unpremultiply_(colour: torch.Tensor, alpha: torch.Tensor) -> None:
    """``colour /= alpha`` in place, in row blocks; 0 where ``alpha < ALPHA_EPSILON``."""
    rows = max(1, (1 << 22) // max(1, colour.shape[-1] * colour.shape[0]))
    for r0 in range(0, colour.shape[-2], rows):
        c = colour[:, r0 : r0 + rows]
        a = alpha[:, r0 : r0 + rows]
        c.div_(a.clamp(min=ALPHA_EPSILON)).mul_(a >= ALPHA_EPSILON)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` -> ``(1, H, W)``: the channel when all are equal, else Pillow's "L" luma."""
    if torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2]):
        return rgb[:1].clone()
    r, g, b = rgb.unbind(0)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(0)
