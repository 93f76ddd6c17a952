"""Training batches made where the network trains: the whole set as uint8 tensors, batched crops.

The DataLoader path (:func:`superres.data.sampling.build_train_loader`) builds every item in a
Python worker: crop, flip, convert, collate, copy. On a GPU that bounds a step at a few hundred
items per second however fast the network is. :class:`DeviceBatches` keeps the prepared images
of a :class:`~superres.data.training.TrainDataset` (or ``PairedDataset``) in memory cache — the
mod-cropped HR and its MATLAB-exact LR of the *whole* image, ``uint8`` — in one flat buffer per
resolution, on the training device, and makes a batch with two gathers:

1. which items: the same :class:`~superres.data.sampling.ResumableSampler` order as the loader
   (a permutation per ``(seed, epoch)``, strided over ranks, ``repeat`` visits per image);
2. each item's crop corner and flips: a pure function of ``(seed, epoch, item index)`` — a
   counter-based hash (SplitMix64, vectorised in NumPy), not a stateful generator, so an item's
   crop does not depend on which rank, batch or restart draws it. A step is therefore a pure
   function of ``(seed, epoch, position)``; the trainer's checkpoint holds those, so a resumed run
   (even after SIGKILL) draws exactly the batches an uninterrupted one would, and N processes
   draw exactly the items of one;
3. one index tensor ``(B, P, P, C)`` per resolution that folds crop, flips and transpose into the
   addresses, and one ``take`` from the flat buffer: the crop arrives augmented, in channels_last
   order (the layout the trainer's networks use), then becomes float32 in [0, 1] (or BT.601 Y).

The LR crop is the cached LR image at the crop — exactly the LR of the benchmark protocol, never
a resize of the patch. Crops cover every valid position of an image with equal probability.

Where the buffers live (``storage``): on the training device when they fit in
``max_device_fraction`` of its free memory (always, on a CPU); otherwise (DIV2K sub-images on a
small GPU) in pinned host memory, where the crops are gathered and then copied asynchronously:
the set streams through the host one batch at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from superres.data.sampling import ResumableSampler, mix_seed
from superres.data.training import PatchDataset
from superres.errors import SuperresError
from superres.imaging.color import rgb_to_y

__all__ = ["CropDraws", "DeviceBatches", "draw_crops"]

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
Storage = Literal["auto", "device", "host"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function over a ``uint64`` array (Steele et al., OOPSLA 2014)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class CropDraws:
    """The random choices of a batch of items, one entry per item (int64 arrays of length B).

    ``top``/``left``: the LR crop corner; ``hflip``/``vflip``/``transpose``: 0 or 1.
    """

    image: np.ndarray
    top: np.ndarray
    left: np.ndarray
    hflip: np.ndarray
    vflip: np.ndarray
    transpose: np.ndarray


def draw_crops(
    items: Sequence[int] | np.ndarray,
    *,
    seed: int,
    epoch: int,
    num_images: int,
    lr_heights: np.ndarray,
    lr_widths: np.ndarray,
    patch: int,
    hflip: bool,
    rot90: bool,
) -> CropDraws:
    """Crop corners and flips of ``items`` (dataset item indices) in ``epoch``: a pure function.

    Item ``i`` uses image ``i % num_images`` (as the DataLoader path). Its three 64-bit draws come
    from hashing ``(seed, epoch, i, k)``; a corner is ``draw % (size - patch + 1)`` (bias below
    ``size / 2**64``), so every valid corner is equally likely. Flags are drawn always and then
    masked by ``hflip``/``rot90``, so turning augmentation off changes no corner.
    """
    index = np.asarray(items, dtype=np.int64)
    base = np.uint64(mix_seed(seed, epoch))
    keys = (index.astype(np.uint64) * np.uint64(4)) ^ base
    h_top, h_left, h_flags = (_splitmix64(keys + np.uint64(k)) for k in (1, 2, 3))
    image = index % num_images
    span_y = (lr_heights[image] - patch + 1).astype(np.uint64)
    span_x = (lr_widths[image] - patch + 1).astype(np.uint64)
    flags = (h_flags >> np.uint64(61)).astype(np.int64)  # the three top bits
    return CropDraws(
        image=image,
        top=(h_top % span_y).astype(np.int64),
        left=(h_left % span_x).astype(np.int64),
        hflip=(flags & 1) * int(hflip),
        vflip=((flags >> 1) & 1) * int(rot90),
        transpose=((flags >> 2) & 1) * int(rot90),
    )


class _FlatImages:
    """Images of one resolution, ``uint8`` HWC, concatenated in one flat buffer with offsets."""

    def __init__(self, images: Sequence[torch.Tensor], device: torch.device, pin: bool) -> None:
        channels = {int(t.shape[0]) for t in images}
        if len(channels) != 1:
            raise SuperresError(f"training images differ in channel count: {sorted(channels)}")
        self.channels = channels.pop()
        sizes = [int(t.shape[-2]) * int(t.shape[-1]) * self.channels for t in images]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        flat = torch.cat([t.permute(1, 2, 0).reshape(-1) for t in images])
        if pin:
            flat = flat.pin_memory()
        self.flat = flat.to(device)
        self.heights = np.array([int(t.shape[-2]) for t in images], dtype=np.int64)
        self.widths = np.array([int(t.shape[-1]) for t in images], dtype=np.int64)
        self.offsets = offsets
        self.nbytes = int(flat.numel())

    def gather(
        self, draws: CropDraws, *, top: np.ndarray, left: np.ndarray, size: int
    ) -> torch.Tensor:
        """``uint8`` crops ``(B, C, size, size)`` (channels_last memory) at the given corners.

        On a GPU one ``take`` with an index tensor that folds crop, flips and transpose into
        the addresses (one kernel for the batch); on a CPU, where that gather is slow, each
        crop is a view of its image, flipped and transposed, then stacked. Both give the same
        bytes (tested).
        """
        if self.flat.device.type == "cpu":
            return self.gather_slices(draws, top=top, left=left, size=size)
        return self.gather_take(draws, top=top, left=left, size=size)

    def _image(self, i: int) -> torch.Tensor:
        start = int(self.offsets[i])
        h, w = int(self.heights[i]), int(self.widths[i])
        return self.flat[start : start + h * w * self.channels].view(h, w, self.channels)

    def gather_slices(
        self, draws: CropDraws, *, top: np.ndarray, left: np.ndarray, size: int
    ) -> torch.Tensor:
        """:meth:`gather` as views of each image, flipped, transposed and stacked."""
        crops = []
        for b in range(len(draws.image)):
            y, x = int(top[b]), int(left[b])
            crop = self._image(int(draws.image[b]))[y : y + size, x : x + size]
            dims = [d for d, on in ((0, draws.vflip[b]), (1, draws.hflip[b])) if on]
            if dims:
                crop = crop.flip(dims)
            if draws.transpose[b]:
                crop = crop.transpose(0, 1)
            crops.append(crop)
        return torch.stack(crops).permute(0, 3, 1, 2)

    def gather_take(
        self, draws: CropDraws, *, top: np.ndarray, left: np.ndarray, size: int
    ) -> torch.Tensor:
        """:meth:`gather` as one ``take`` with an index tensor of the whole batch."""
        device = self.flat.device
        meta = np.stack(
            [
                self.offsets[draws.image],
                self.widths[draws.image],
                top,
                left,
                draws.hflip,
                draws.vflip,
                draws.transpose,
            ],
            axis=1,
        )
        m = torch.from_numpy(meta).to(device, non_blocking=True)
        offset, width, y0, x0, hf, vf, tr = (m[:, k].view(-1, 1, 1) for k in range(7))
        grid = torch.arange(size, device=device)
        u, v = grid.view(1, -1, 1), grid.view(1, 1, -1)
        swap = tr.bool()
        row = torch.where(swap, v, u)  # transposed: output (u, v) reads source (v, u)
        col = torch.where(swap, u, v)
        row = torch.where(vf.bool(), size - 1 - row, row)
        col = torch.where(hf.bool(), size - 1 - col, col)
        c = self.channels
        pixel = offset + ((y0 + row) * width + (x0 + col)) * c  # (B, size, size)
        index = pixel.unsqueeze(-1) + torch.arange(c, device=device)  # (B, size, size, C)
        return self.flat.take(index).permute(0, 3, 1, 2)


class DeviceBatches:
    """Batches of aligned LR/HR crops of a memory-cached patch dataset, made on ``device``.

    Args:
        dataset: a :class:`~superres.data.training.TrainDataset` (``cache="memory"``) or
            ``PairedDataset``: its prepared ``uint8`` pairs, scale, patch size, channels, flips,
            ``repeat`` and seed are used as they are.
        sampler: the order of items (its epoch and rank share); the same object the trainer
            checkpoints.
        batch_size: items per batch on this rank.
        device: where the batches are needed.
        storage: ``"device"``, ``"host"`` (pinned memory; crops copied per batch) or ``"auto"``
            (the device when the buffers take at most ``max_device_fraction`` of its free memory;
            always on a CPU).
        max_device_fraction: see ``storage``.

    Raises:
        SuperresError: the dataset holds no in-memory images (``cache="none"``: use the
            DataLoader path).
    """

    def __init__(
        self,
        dataset: PatchDataset,
        sampler: ResumableSampler,
        *,
        batch_size: int,
        device: torch.device,
        storage: Storage = "auto",
        max_device_fraction: float = 0.5,
    ) -> None:
        pairs: list[tuple[torch.Tensor, torch.Tensor]] = getattr(dataset, "_cache", [])
        if not pairs:
            raise SuperresError(
                "the device pipeline needs the images in memory (cache='memory'); use "
                "data.pipeline: loader for a dataset that decodes per item"
            )
        if storage not in ("auto", "device", "host"):
            raise SuperresError(f"storage must be auto, device or host; got {storage!r}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.device = device
        self.scale = dataset.scale
        self.gt_size = dataset.gt_size
        self.patch = dataset.gt_size // dataset.scale
        nbytes = sum(lq.numel() + gt.numel() for lq, gt in pairs)
        if storage == "auto":
            storage = "device"
            if device.type == "cuda":
                free, _total = torch.cuda.mem_get_info(device)
                storage = "device" if nbytes <= max_device_fraction * free else "host"
        self.storage: Literal["device", "host"] = storage
        place = device if storage == "device" else torch.device("cpu")
        pin = storage == "host" and device.type == "cuda"
        self.lq = _FlatImages([lq for lq, _ in pairs], place, pin)
        self.gt = _FlatImages([gt for _, gt in pairs], place, pin)
        self.nbytes = self.lq.nbytes + self.gt.nbytes
        self._order: tuple[int, list[int]] | None = None
        logger.info(
            "device pipeline: %d images, %.1f MB uint8 in %s memory (%s)",
            len(pairs),
            self.nbytes / 1e6,
            storage,
            place,
        )

    def batches_per_epoch(self) -> int:
        """Full batches one rank draws per epoch (a last partial batch is dropped)."""
        return self.sampler.num_samples // self.batch_size

    def _items(self, epoch: int, position: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            self.sampler.set_epoch(epoch)
            self._order = (epoch, self.sampler.indices())
        return self._order[1][position : position + self.batch_size]

    def batch(self, epoch: int, position: int) -> Batch:
        """The batch of this rank at ``position`` (items already consumed) of ``epoch``.

        Returns ``{"lq": (B, C, p, p), "gt": (B, C, P, P)}`` float32 in [0, 1] on the device,
        channels_last; ``C`` is 3, or 1 for a Y-channel dataset. ``position + batch_size`` must
        not pass the rank's share of the epoch.
        """
        items = self._items(epoch, position)
        if len(items) != self.batch_size:
            raise SuperresError(
                f"position {position} of epoch {epoch} leaves {len(items)} items, not a batch of "
                f"{self.batch_size}; start the next epoch"
            )
        ds = self.dataset
        draws = draw_crops(
            items,
            seed=ds.seed,
            epoch=epoch,
            num_images=len(self.lq.offsets),
            lr_heights=self.lq.heights,
            lr_widths=self.lq.widths,
            patch=self.patch,
            hflip=ds.hflip,
            rot90=ds.rot90,
        )
        lq8 = self.lq.gather(draws, top=draws.top, left=draws.left, size=self.patch)
        gt8 = self.gt.gather(
            draws, top=draws.top * self.scale, left=draws.left * self.scale, size=self.gt_size
        )
        lq = lq8.to(self.device, non_blocking=True).float().div_(255.0)
        gt = gt8.to(self.device, non_blocking=True).float().div_(255.0)
        if ds.channels == "y":
            lq, gt = rgb_to_y(lq), rgb_to_y(gt)
        return {"lq": lq, "gt": gt}
