"""The device-resident training pipeline (:mod:`superres.data.device_pipeline`): aligned, uniform,
reproducible crops, identical on every storage and split over ranks exactly as one process."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.data.datasets import bicubic_downscale
from superres.data.device_pipeline import DeviceBatches, draw_crops
from superres.data.training import PairedDataset, ResumableSampler, TrainDataset
from superres.errors import SuperresError
from superres.imaging.color import rgb_to_y
from superres.imaging.quantize import to_integer


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    """Five textured images of different sizes (one smaller than the patch: it is padded)."""
    folder = tmp_path / "HR"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(37, 50), (64, 41), (30, 30), (52, 52), (20, 44)]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = 120 + 60 * np.sin(xx / (3 + i)) * np.cos(yy / 4)
        image = base[..., None] + rng.normal(0, 20, (h, w, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def _dataset(folder: Path, **kwargs: object) -> TrainDataset:
    args: dict[str, object] = {"roots": [folder], "scale": 4, "gt_size": 24, "repeat": 3}
    args.update(kwargs)
    return TrainDataset(**args)  # pyright: ignore[reportArgumentType]


def _batches(dataset: TrainDataset, batch: int = 5, **kwargs: object) -> DeviceBatches:
    sampler = ResumableSampler(len(dataset), seed=dataset.seed, **kwargs)  # pyright: ignore[reportArgumentType]
    return DeviceBatches(dataset, sampler, batch_size=batch, device=torch.device("cpu"))


def _expected_crops(dataset: TrainDataset, items: list[int], epoch: int) -> tuple[list, list]:
    """Crops cut by plain slicing and flipping of the cached pairs, for the same draws."""
    lq_h = np.array([int(lq.shape[-2]) for lq, _ in dataset._cache])
    lq_w = np.array([int(lq.shape[-1]) for lq, _ in dataset._cache])
    p = dataset.gt_size // dataset.scale
    draws = draw_crops(
        items,
        seed=dataset.seed,
        epoch=epoch,
        num_images=len(dataset._cache),
        lr_heights=lq_h,
        lr_widths=lq_w,
        patch=p,
        hflip=dataset.hflip,
        rot90=dataset.rot90,
    )
    lqs, gts = [], []
    s = dataset.scale
    for b in range(len(items)):
        lq8, gt8 = dataset._cache[int(draws.image[b])]
        y, x = int(draws.top[b]), int(draws.left[b])
        crops = [lq8[:, y : y + p, x : x + p], gt8[:, y * s : (y + p) * s, x * s : (x + p) * s]]
        out = []
        for t in crops:
            if draws.hflip[b]:
                t = t.flip(-1)
            if draws.vflip[b]:
                t = t.flip(-2)
            if draws.transpose[b]:
                t = t.transpose(-2, -1)
            out.append(t.float() / 255)
        lqs.append(out[0])
        gts.append(out[1])
    return lqs, gts


def test_crops_are_the_cached_pairs_cut_and_flipped_exactly(hr_folder: Path) -> None:
    dataset = _dataset(hr_folder)
    pipe = _batches(dataset)
    for epoch, position in ((0, 0), (0, 5), (2, 10)):
        batch = pipe.batch(epoch, position)
        assert batch["lq"].shape == (5, 3, 6, 6)
        assert batch["gt"].shape == (5, 3, 24, 24)
        assert batch["lq"].dtype == batch["gt"].dtype == torch.float32
        assert batch["gt"].is_contiguous(memory_format=torch.channels_last)
        pipe.sampler.set_epoch(epoch)
        items = pipe.sampler.indices()[position : position + 5]
        lqs, gts = _expected_crops(dataset, items, epoch)
        for b in range(5):
            assert torch.equal(batch["lq"][b], lqs[b])
            assert torch.equal(batch["gt"][b], gts[b])


def test_the_lr_crop_is_the_bicubic_of_the_whole_image_at_the_crop(hr_folder: Path) -> None:
    # Not a resize of the patch: the benchmark's LR of the whole mod-cropped HR image, cropped.
    dataset = _dataset(hr_folder, hflip=False, rot90=False)
    pipe = _batches(dataset, batch=8)
    batch = pipe.batch(0, 0)
    items = pipe.sampler.indices()[:8]
    p, s = 6, 4
    lq_h = pipe.lq.heights
    lq_w = pipe.lq.widths
    draws = draw_crops(
        items,
        seed=0,
        epoch=0,
        num_images=5,
        lr_heights=lq_h,
        lr_widths=lq_w,
        patch=p,
        hflip=False,
        rot90=False,
    )
    for b in range(8):
        _, gt8 = dataset._cache[int(draws.image[b])]
        lr_whole = to_integer(bicubic_downscale(gt8.float() / 255, s))
        y, x = int(draws.top[b]), int(draws.left[b])
        assert torch.equal(batch["lq"][b], lr_whole[:, y : y + p, x : x + p].float() / 255)
        assert torch.equal(
            batch["gt"][b], gt8[:, y * s : (y + p) * s, x * s : (x + p) * s].float() / 255
        )


def test_corners_cover_the_image_uniformly_and_flips_are_fair() -> None:
    patch, n = 8, 130_000
    one_image = functools.partial(
        draw_crops, seed=3, epoch=1, num_images=1, patch=patch, lr_heights=np.array([20])
    )
    draws = one_image(np.arange(n), lr_widths=np.array([17]), hflip=True, rot90=True)
    corners = draws.top * 10 + draws.left
    assert (draws.top.min(), draws.top.max()) == (0, 20 - patch)
    assert (draws.left.min(), draws.left.max()) == (0, 17 - patch)
    counts = np.bincount(corners, minlength=13 * 10)
    assert counts.size == 130  # no corner outside the image
    expected = n / 130
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 129 + 6 * np.sqrt(2 * 129)  # 129 degrees of freedom, six sigma
    symmetry = draws.hflip * 4 + draws.vflip * 2 + draws.transpose
    share = np.bincount(symmetry, minlength=8) / n
    assert np.abs(share - 1 / 8).max() < 0.005
    off = one_image(np.arange(n), lr_widths=np.array([17]), hflip=False, rot90=False)
    assert not np.any([off.hflip, off.vflip, off.transpose])
    assert np.array_equal(off.top, draws.top)  # augmentation flags change no corner


def test_a_batch_is_a_pure_function_of_seed_epoch_and_position(hr_folder: Path) -> None:
    first = _batches(_dataset(hr_folder, seed=7))
    again = _batches(_dataset(hr_folder, seed=7))
    other_seed = _batches(_dataset(hr_folder, seed=8))
    # out of order, and again: the same batches
    a = [first.batch(1, 5), first.batch(0, 0), first.batch(1, 5)]
    b = [again.batch(0, 0), again.batch(1, 5)]
    assert torch.equal(a[0]["gt"], a[2]["gt"])
    assert torch.equal(a[0]["gt"], b[1]["gt"])
    assert torch.equal(a[1]["lq"], b[0]["lq"])
    assert not torch.equal(a[0]["gt"], a[1]["gt"])
    assert not torch.equal(other_seed.batch(0, 0)["gt"], b[0]["gt"])


def test_an_item_is_cropped_the_same_whatever_batch_or_rank_draws_it(hr_folder: Path) -> None:
    dataset = _dataset(hr_folder)
    whole = _batches(dataset, batch=4).batch(0, 0)
    ranks = [_batches(dataset, batch=2, rank=r, world_size=2).batch(0, 0) for r in (0, 1)]
    # rank r takes every second item from r: one-process batch = interleaved rank batches
    for key in ("lq", "gt"):
        interleaved = torch.stack([ranks[i % 2][key][i // 2] for i in range(4)])
        assert torch.equal(interleaved, whole[key])


def test_host_storage_gives_the_same_batches(hr_folder: Path) -> None:
    dataset = _dataset(hr_folder)
    sampler = ResumableSampler(len(dataset), seed=0)
    host = DeviceBatches(dataset, sampler, batch_size=5, device=torch.device("cpu"), storage="host")
    device = _batches(dataset)
    assert host.storage == "host"
    assert device.storage == "device"
    for key in ("lq", "gt"):
        assert torch.equal(host.batch(1, 0)[key], device.batch(1, 0)[key])


def test_y_channel_and_paired_datasets(hr_folder: Path, tmp_path: Path) -> None:
    rgb = _batches(_dataset(hr_folder)).batch(0, 0)
    y = _batches(_dataset(hr_folder, channels="y")).batch(0, 0)
    assert y["lq"].shape == (5, 1, 6, 6)
    assert torch.allclose(y["gt"], rgb_to_y(rgb["gt"]))
    # An LR/HR folder pair: its own LR images are used as they are.
    lq_dir, gt_dir = tmp_path / "pair_lq", tmp_path / "pair_gt"
    lq_dir.mkdir()
    gt_dir.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 28, 3), dtype=np.uint8)).save(gt_dir / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (8, 7, 3), dtype=np.uint8)).save(lq_dir / f"{i}.png")
    paired = PairedDataset(lq_root=lq_dir, gt_root=gt_dir, scale=4, gt_size=16)
    batch = _batches(paired, batch=3).batch(0, 0)  # pyright: ignore[reportArgumentType]
    assert batch["lq"].shape == (3, 3, 4, 4)
    assert batch["gt"].shape == (3, 3, 16, 16)


def test_misuse_is_named(hr_folder: Path) -> None:
    streamed = _dataset(hr_folder, cache="none")
    with pytest.raises(SuperresError, match="pipeline: loader"):
        _batches(streamed)
    pipe = _batches(_dataset(hr_folder), batch=5)  # 15 items per epoch
    with pytest.raises(SuperresError, match="next epoch"):
        pipe.batch(0, 12)
    assert pipe.batches_per_epoch() == 3


def test_the_gpu_gather_and_the_cpu_gather_cut_the_same_bytes(hr_folder: Path) -> None:
    dataset = _dataset(hr_folder)
    pipe = _batches(dataset, batch=12)
    draws = draw_crops(
        pipe.sampler.indices()[:12],
        seed=0,
        epoch=0,
        num_images=5,
        lr_heights=pipe.gt.heights // 4,
        lr_widths=pipe.gt.widths // 4,
        patch=6,
        hflip=True,
        rot90=True,
    )
    assert (
        len(
            {
                (int(a), int(b), int(c))
                for a, b, c in zip(draws.hflip, draws.vflip, draws.transpose, strict=True)
            }
        )
        > 3
    )
    for images, scale in ((pipe.lq, 1), (pipe.gt, 4)):
        kwargs = {"top": draws.top * scale, "left": draws.left * scale, "size": 6 * scale}
        assert torch.equal(
            images.gather_take(draws, **kwargs), images.gather_slices(draws, **kwargs)
        )
