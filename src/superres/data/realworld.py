"""Real-world training pairs: the LR of each HR crop synthesised on the training device.

A recipe with a ``data.degradation`` section
(:class:`~superres.data.degradations.DegradationConfig`) trains on LR made by Real-ESRGAN's
degradation model instead of the cached bicubic LR:
:class:`RealWorldLR` takes a batch from either pipeline (its HR crops, already augmented) and
returns ``{"lq": degrade(target), "gt": target}``, where the target is the crop unsharp-masked
(:func:`~superres.imaging.sharpen.usm_sharpen`, ``data.sharpen_targets``; Real-ESRGAN's
sharpened targets) or the crop itself.

Every random draw comes from a generator seeded by ``(seed, rank, epoch, position)``, so a batch
is a pure function of the run's seed and its place in the run: a resumed run synthesises exactly
the LR an uninterrupted one would.

Departures from Real-ESRGAN's training code: the crop is degraded (Real-ESRGAN degrades a 400-px
crop, then crops 256 px from the result); no pool of earlier pairs is mixed into the batch; the
discriminator sees the same (sharpened, when asked) targets as the pixel and perceptual terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from superres.data.degradations import DegradationConfig, degrade
from superres.data.sampling import mix_seed
from superres.imaging.sharpen import usm_sharpen

__all__ = ["RealWorldLR"]

#: Keeps these streams apart from every other use of the run's seed.
_STREAM = 0x5EA1


@dataclass(frozen=True)
class RealWorldLR:
    """Synthesises a batch's LR from its HR crops (see the module).

    Attributes:
        scale: the recipe's scale.
        config: the degradation model.
        sharpen_targets: train towards the unsharp-masked crops.
        seed: the recipe's seed.
        rank: this process's rank (each rank draws its own degradations).
        device: where the pairs are made (the training device).
    """

    scale: int
    config: DegradationConfig
    sharpen_targets: bool
    seed: int
    rank: int
    device: torch.device

    def __call__(
        self, batch: dict[str, torch.Tensor], *, epoch: int, position: int
    ) -> dict[str, torch.Tensor]:
        """The pair for the batch at ``position`` (items consumed before it) of ``epoch``."""
        gt = batch["gt"].to(self.device, non_blocking=True).float().contiguous()
        if self.sharpen_targets:
            gt = usm_sharpen(gt)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(mix_seed(self.seed, _STREAM, self.rank, epoch, position))
        lq = degrade(gt, scale=self.scale, config=self.config, generator=generator)
        return {"lq": lq, "gt": gt}
