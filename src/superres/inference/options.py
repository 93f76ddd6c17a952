"""How to run a network on images: the one frozen list of options the Upscaler takes.

:class:`UpscaleOptions` is what :class:`~superres.inference.Upscaler`,
:func:`superres.upscale` and :func:`~superres.inference.batch.upscale_files` accept (and what the
CLI builds from its flags), checked once when it is made. Device and precision are names here;
they are resolved against the hardware and the model by the Upscaler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from superres.errors import SuperresError
from superres.inference.tiling import InvalidTilingError

__all__ = ["DEFAULT_OVERLAP", "TileArg", "UpscaleOptions"]

#: Default overlap between tiles (input pixels). The outer quarter (8 px) of each side is
#: discarded and the middle half cross-faded, which makes tiled output identical to untiled output
#: for networks whose receptive-field radius is <= 8 px and seamless for the rest.
DEFAULT_OVERLAP = 32

TileArg = int | Literal["auto"] | None


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SuperresError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_tile(tile: object) -> int | Literal["auto"] | None:
    if tile == "auto" or tile is None:
        return tile  # type: ignore[return-value]  # narrowed by the comparison
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 0:
        raise SuperresError(
            f"tile must be a positive number of pixels, 'auto', or 0/None (off); got {tile!r}"
        )
    return tile or None


@dataclass(frozen=True, kw_only=True)
class UpscaleOptions:
    """How an :class:`~superres.inference.Upscaler` runs its network (all keyword-only).

    Attributes:
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"``, ... or a
            ``torch.device``.
        precision: ``"auto"`` (fp16 autocast on CUDA; on the CPU bf16 for model families
            verified to lose at most 0.02 dB on CPUs with native bf16, else fp32; fp32 on MPS),
            ``"fp32"`` (on the CPU the exact fast path: equal to eager fp32 to 1e-5), ``"bf16"``
            (CUDA, or CPU when asked) or ``"fp16"`` (CUDA only). See
            :func:`~superres.runtime.resolve_precision`.
        tile: tile size in input pixels; ``"auto"`` picks the largest tile whose activations fit
            the memory budget; ``None`` or 0 (stored as ``None``) runs the whole image at once.
            The Upscaler rounds it down to a multiple of the model's ``size_multiple``.
        overlap: pixels shared by neighbouring tiles (see :mod:`superres.inference.tiling`);
            tiled equals untiled when ``overlap / 4`` covers the network's receptive field.
        batch_size: tiles per forward pass.
        outscale: final size factor (any positive float, stored as ``float``): the output is
            ``(round(H * outscale), round(W * outscale))``, reached from the network's output by
            MATLAB bicubic (rounded half up). ``None``: the network's scale.
        backproject: iterations of back-projection against the input (0: off).
        backproject_step: its step size in (0, 1].
        progress: show progress bars (tiles of large images; images in a batch).
        tile_memory: activation budget in bytes for ``tile="auto"``; default
            :data:`~superres.inference.upscaler.CPU_TILE_MEMORY` on CPU/MPS, half the free memory
            on CUDA.
        optimize: on the CPU, run the network rewritten by
            :func:`~superres.inference.fast.fast_network` (the default); ``False`` runs the module
            as it is (eager, NCHW), e.g. to compare.

    Raises:
        SuperresError: an option of the wrong type or out of range (InvalidTilingError: a tile
            not larger than the overlap).
    """

    device: str | torch.device = "auto"
    precision: str = "auto"
    tile: TileArg = "auto"
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 1
    outscale: float | None = None
    backproject: int = 0
    backproject_step: float = 1.0
    progress: bool = False
    tile_memory: int | None = None
    optimize: bool = True

    def __post_init__(self) -> None:
        tile = _check_tile(self.tile)
        _check_int("overlap", self.overlap, 0)
        if isinstance(tile, int) and tile <= self.overlap:
            raise InvalidTilingError(
                f"tile ({tile} px) must be larger than the overlap ({self.overlap} px); use "
                "a larger --tile or a smaller --overlap"
            )
        _check_int("batch_size", self.batch_size, 1)
        _check_int("backproject", self.backproject, 0)
        step = self.backproject_step
        if not (
            isinstance(step, int | float)
            and not isinstance(step, bool)
            and math.isfinite(step)
            and 0 < step <= 1
        ):
            raise SuperresError(f"backproject_step must be in (0, 1], got {step!r}")
        outscale = self.outscale
        if outscale is not None and not (
            isinstance(outscale, int | float)
            and not isinstance(outscale, bool)
            and math.isfinite(outscale)
            and outscale > 0
        ):
            raise SuperresError(
                f"outscale must be a positive, finite number (e.g. 3.5), got {outscale!r}; leave "
                "it out to keep the network's own scale"
            )
        if self.tile_memory is not None:
            _check_int("tile_memory", self.tile_memory, 1)
        # Normalised once, so every reader sees one form: 0 -> None, numbers -> float.
        object.__setattr__(self, "tile", tile)
        object.__setattr__(self, "backproject_step", float(step))
        object.__setattr__(self, "outscale", None if outscale is None else float(outscale))
