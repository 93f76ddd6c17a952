"""A training run's data: its HR files, the seeded hold-out split, the dataset, the resumable
sampler, the batch pipeline and the validation pairs.

``data.batch_size`` is the global batch: each of N processes takes ``batch_size / N`` items
(:func:`local_batch_size`), and the sampler gives each rank a disjoint strided share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from superres.data.catalog import DATASETS, dataset_hr_dir, list_image_files, resolve_data_root
from superres.data.datasets import BenchmarkImage, BenchmarkSet, bicubic_downscale, mod_crop
from superres.data.device_pipeline import DeviceBatches
from superres.data.prepare import prepared_subimages
from superres.data.realworld import RealWorldLR
from superres.data.training import (
    ResumableSampler,
    TrainDataset,
    build_train_loader,
    holdout_split,
)
from superres.errors import ConfigError
from superres.io.image import read_image
from superres.runtime import DistributedEnv
from superres.training.config import Recipe, RunOptions, SubimagesConfig


@dataclass(frozen=True)
class TrainingData:
    """What :func:`build_training_data` returns: the data ``root``, this rank's share of the
    batch, and exactly one of ``device_batches`` (batches cut on the training device from the
    cached images) and ``loader`` (batches built by workers), as ``data.pipeline`` asks.
    ``val_pairs`` is empty on every rank but rank 0. ``realworld`` (a recipe with
    ``data.degradation``) replaces each batch's LR by a synthesised one (:meth:`finish`)."""

    root: Path
    local_batch: int
    dataset: TrainDataset
    sampler: ResumableSampler
    device_batches: DeviceBatches | None
    loader: DataLoader[dict[str, torch.Tensor]] | None
    val_pairs: list[BenchmarkImage]
    realworld: RealWorldLR | None = None

    def finish(
        self, batch: dict[str, torch.Tensor], epoch: int, position: int
    ) -> dict[str, torch.Tensor]:
        """``batch`` as the step trains on it: with real-world LR when the recipe asks."""
        if self.realworld is None:
            return batch
        return self.realworld(batch, epoch=epoch, position=position)


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Each process's share of the global ``data.batch_size``."""
    if batch_size % world_size:
        raise ConfigError(
            f"data.batch_size {batch_size} is the global batch and must divide "
            f"by the {world_size} processes"
        )
    return batch_size // world_size


def resolve_train_files(
    roots: tuple[str, ...],
    data_root: Path,
    *,
    subimages: SubimagesConfig | None = None,
    workers: int = 1,
) -> list[Path]:
    """HR files of ``roots``: catalog names (``t91``), paths under the data root, or absolute;
    with ``subimages``, the sub-images of each folder (cut into the cache on first use)."""
    files: list[Path] = []
    for root in roots:
        if root.lower() in DATASETS:
            folder = dataset_hr_dir(root, data_root)
        else:
            folder = Path(root).expanduser()
            if not folder.is_absolute():
                folder = data_root / folder
            if not folder.is_dir():
                raise ConfigError(
                    f"data.train_roots: {root!r} is neither a catalogued dataset nor a folder "
                    f"(looked for {folder}); fix the path or --data-root"
                )
        if subimages is not None:
            folder = prepared_subimages(
                folder,
                crop_size=subimages.crop_size,
                step=subimages.step,
                thresh_size=subimages.thresh_size,
                workers=workers,
            )
        found = list_image_files(folder)
        if not found:
            raise ConfigError(f"data.train_roots: {folder} holds no images")
        files.extend(found)
    return files


def validation_pairs(recipe: Recipe, data_root: Path, holdout: list[Path]) -> list[BenchmarkImage]:
    """The (HR, LR) pairs validation scores: ``validation.dataset``, or the held-out files
    with LR images made by the evaluation protocol's bicubic; at most ``max_images``."""
    cfg = recipe.validation
    pairs: list[BenchmarkImage] = []
    if cfg.dataset is not None:
        pairs.extend(BenchmarkSet(cfg.dataset, recipe.scale, root=data_root))
    else:
        for path in holdout:
            hr = mod_crop(read_image(path).rgb, recipe.scale)
            lq = bicubic_downscale(hr, recipe.scale)
            pairs.append(BenchmarkImage(path.stem, hr, lq, grayscale=False, lq_source="generated"))
    return pairs[: cfg.max_images] if cfg.max_images is not None else pairs


def _train_dataset(recipe: Recipe, files: list[Path]) -> TrainDataset:
    dataset = TrainDataset(
        roots=[],
        files=files,
        scale=recipe.scale,
        gt_size=recipe.data.gt_size,
        channels=recipe.data.channels,
        hflip=recipe.data.hflip,
        rot90=recipe.data.rot90,
        small_images=recipe.data.small_images,
        repeat=recipe.data.repeat,
        seed=recipe.seed,
    )
    if len(dataset) < recipe.data.batch_size:
        raise ConfigError(
            f"the training set has {len(dataset)} items, fewer than one batch of "
            f"{recipe.data.batch_size}; add images or raise data.repeat"
        )
    return dataset


def build_training_data(
    recipe: Recipe, options: RunOptions, *, env: DistributedEnv, device: torch.device
) -> TrainingData:
    """The run's data on this rank (see :class:`TrainingData`)."""
    local_batch = local_batch_size(recipe.data.batch_size, env.world_size)
    root = resolve_data_root(options.data_root)
    workers = max(1, options.num_workers)
    files = resolve_train_files(
        recipe.data.train_roots, root, subimages=recipe.data.subimages, workers=workers
    )
    holdout: list[Path] = []
    if recipe.data.holdout_fraction > 0:
        fraction = recipe.data.holdout_fraction
        files, holdout = holdout_split(files, fraction=fraction, seed=recipe.seed)
    dataset = _train_dataset(recipe, files)
    sampler = ResumableSampler(
        len(dataset), seed=recipe.seed, rank=env.rank, world_size=env.world_size
    )
    device_batches: DeviceBatches | None = None
    loader: DataLoader[dict[str, torch.Tensor]] | None = None
    if recipe.data.pipeline == "device":
        device_batches = DeviceBatches(dataset, sampler, batch_size=local_batch, device=device)
    else:
        loader = build_train_loader(
            dataset,
            sampler,
            batch_size=local_batch,
            num_workers=options.num_workers,
            pin_memory=device.type == "cuda",
        )
    val_pairs = validation_pairs(recipe, root, holdout) if env.is_main else []
    realworld = None
    if recipe.data.degradation is not None:
        realworld = RealWorldLR(
            scale=recipe.scale,
            config=recipe.data.degradation,
            sharpen_targets=recipe.data.sharpen_targets,
            seed=recipe.seed,
            rank=env.rank,
            device=device,
        )
    return TrainingData(
        root, local_batch, dataset, sampler, device_batches, loader, val_pairs, realworld
    )


__all__ = [
    "TrainingData",
    "build_training_data",
    "local_batch_size",
    "resolve_train_files",
    "validation_pairs",
]
