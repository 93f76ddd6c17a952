"""Training data: aligned crops, augmentation, padding, seeded datasets, resumable sharded order."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from superres.data.datasets import bicubic_downscale, mod_crop
from superres.data.training import (
    PairedDataset,
    PairingError,
    ResumableSampler,
    TrainDataset,
    build_train_loader,
    holdout_split,
)
from superres.data.transforms import augment, pad_to_min_size, paired_random_crop
from superres.errors import DatasetNotFoundError, ImageTooSmallError, InvalidImageError
from superres.imaging.color import rgb_to_y
from superres.io.image import read_image

# --- helpers --------------------------------------------------------------------------------------


def _pixels(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _save(path: Path, h: int, w: int, seed: int = 0, channels: int = 3) -> Path:
    Image.fromarray(_pixels(h, w, seed, channels)).save(path)
    return path


def _hr_folder(folder: Path, sizes: list[tuple[int, int]], ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        _save(folder / f"img{i:02d}{ext}", h, w, seed=i)
    return folder


def _nearest_up(lq: torch.Tensor, scale: int) -> torch.Tensor:
    return lq.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def _find(patch: torch.Tensor, image: torch.Tensor) -> tuple[int, int]:
    """The unique (top, left) where ``patch`` occurs in ``image`` (random images: unique)."""
    ph, pw = patch.shape[-2:]
    windows = image.unfold(-2, ph, 1).unfold(-2, pw, 1)  # (C, nH, nW, ph, pw)
    hits = (windows == patch.unsqueeze(1).unsqueeze(1)).flatten(-2).all(-1).all(0).nonzero()
    assert hits.shape[0] == 1, f"patch found {hits.shape[0]} times"
    return int(hits[0, 0]), int(hits[0, 1])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- transforms -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_paired_random_crop_is_aligned(scale: int) -> None:
    lq = torch.rand(3, 13, 17, generator=_gen(1))
    gt = _nearest_up(lq, scale)
    for seed in range(10):
        lq_p, gt_p = paired_random_crop(
            lq, gt, gt_size=6 * scale, scale=scale, generator=_gen(seed)
        )
        assert lq_p.shape == (3, 6, 6)
        assert gt_p.shape == (3, 6 * scale, 6 * scale)
        assert torch.equal(gt_p, _nearest_up(lq_p, scale))
        top, left = _find(lq_p, lq)
        expected = gt[:, top * scale : (top + 6) * scale, left * scale : (left + 6) * scale]
        assert torch.equal(gt_p, expected)


def test_paired_random_crop_covers_the_corners() -> None:
    lq = torch.rand(1, 5, 5, generator=_gen(0))
    gt = _nearest_up(lq, 2)
    corners = set()
    for seed in range(200):
        lq_p, _ = paired_random_crop(lq, gt, gt_size=8, scale=2, generator=_gen(seed))
        corners.add(_find(lq_p, lq))
    assert corners == {(t, left) for t in range(2) for left in range(2)}


def test_paired_random_crop_errors() -> None:
    lq, gt = torch.rand(3, 8, 8), torch.rand(3, 32, 32)
    with pytest.raises(InvalidImageError, match="multiple of scale 4"):
        paired_random_crop(lq, gt, gt_size=30, scale=4, generator=_gen(0))
    with pytest.raises(ImageTooSmallError, match="needs at least 48x48"):
        paired_random_crop(lq, gt, gt_size=48, scale=4, generator=_gen(0))
    with pytest.raises(InvalidImageError, match="should be 24x24"):
        paired_random_crop(lq, gt, gt_size=15, scale=3, generator=_gen(0))


def test_augment_applies_one_transform_to_all() -> None:
    lq = torch.rand(3, 6, 6, generator=_gen(0))
    gt = _nearest_up(lq, 3)
    seen = set()
    for seed in range(64):
        out_lq, out_gt = augment([lq, gt], hflip=True, rot90=True, generator=_gen(seed))
        assert torch.equal(out_gt, _nearest_up(out_lq, 3))
        seen.add(out_lq.numpy().tobytes())
    assert len(seen) == 8  # the 8 symmetries of the square


def test_augment_flags_and_generator_use() -> None:
    x = torch.rand(2, 4, 5, generator=_gen(0))
    for seed in range(8):
        g = _gen(seed)
        (same,) = augment([x], hflip=False, rot90=False, generator=g)
        assert torch.equal(same, x)
        # The generator advances the same way whatever the flags.
        assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=_advance(seed)))
    flips = {augment([x], hflip=True, rot90=False, generator=_gen(s))[0].shape for s in range(16)}
    assert flips == {(2, 4, 5)}  # no transposes without rot90
    shapes = {augment([x], hflip=False, rot90=True, generator=_gen(s))[0].shape for s in range(16)}
    assert shapes == {(2, 4, 5), (2, 5, 4)}


def _advance(seed: int) -> torch.Generator:
    g = _gen(seed)
    torch.rand(3, generator=g)
    return g


def test_pad_to_min_size_reflects_like_numpy() -> None:
    x = torch.rand(3, 7, 9, generator=_gen(0))
    out = pad_to_min_size(x, 12)
    expected = np.pad(x.numpy(), ((0, 0), (0, 5), (0, 3)), mode="reflect")
    assert out.shape == (3, 12, 12)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert pad_to_min_size(x, 7).shape == (3, 7, 9)  # large enough: unchanged
    assert torch.equal(pad_to_min_size(x, 5), x)


def test_pad_to_min_size_tiny_batched_and_modes() -> None:
    x = torch.rand(2, 3, 2, 3, generator=_gen(0))
    out = pad_to_min_size(x, 10)
    assert out.shape == (2, 3, 10, 10)
    # Repeated reflection only ever copies existing values.
    assert set(out.unique().tolist()) <= set(x.unique().tolist())
    assert torch.equal(out[..., :2, :3], x)
    one = pad_to_min_size(torch.rand(1, 1, 4), 4)  # a 1-pixel side cannot be mirrored
    assert one.shape == (1, 4, 4)
    assert torch.equal(pad_to_min_size(x, 4, mode="replicate"), F.pad(x, (0, 1, 0, 2), "replicate"))
    assert pad_to_min_size(x, 4, mode="constant")[..., 3, :].abs().sum() == 0
    with pytest.raises(InvalidImageError, match="pad mode"):
        pad_to_min_size(x, 4, mode="wrap")  # type: ignore[arg-type]


# --- TrainDataset ---------------------------------------------------------------------------------


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    folder = _hr_folder(tmp_path / "hr", [(40, 46), (37, 50), (34, 35)])
    _save(folder / "photo.jpg", 44, 36, seed=7)
    _save(folder / "gray.bmp", 38, 41, seed=8, channels=1)
    _save(folder / "scan.tiff", 33, 39, seed=9)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_lq_patch_is_the_benchmark_lr_of_the_whole_image(hr_dir: Path) -> None:
    scale, gt_size = 4, 16
    ds = TrainDataset(roots=[hr_dir], scale=scale, gt_size=gt_size, hflip=False, rot90=False)
    assert len(ds) == 6
    assert [p.name for p in ds.files] == [
        "gray.bmp",
        "img00.png",
        "img01.png",
        "img02.png",
        "photo.jpg",
        "scan.tiff",
    ]
    for index in range(len(ds)):
        item = ds[index]
        assert item["lq"].shape == (3, 4, 4)
        assert item["lq"].dtype == torch.float32
        assert item["gt"].shape == (3, 16, 16)
        assert item["gt"].dtype == torch.float32
        hr = mod_crop(read_image(ds.files[index]).rgb, scale)
        lr = bicubic_downscale(hr, scale)
        top, left = _find(item["gt"], hr)
        assert top % scale == 0
        assert left % scale == 0
        t, lf = top // scale, left // scale
        assert torch.equal(item["lq"], lr[:, t : t + 4, lf : lf + 4])


def test_items_are_deterministic_per_seed_epoch_index(hr_dir: Path) -> None:
    a = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, seed=3, repeat=2)
    b = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, seed=3, repeat=2, cache="none")
    assert len(a) == len(b) == 12
    for i in (0, 5, 11):
        assert torch.equal(a[i]["gt"], b[i]["gt"])
        assert torch.equal(a[i]["lq"], b[i]["lq"])
    # Order of access does not matter; repeats of an image get their own crops.
    first = a[7]["gt"].clone()
    _ = [a[i] for i in range(12)]
    assert torch.equal(a[7]["gt"], first)
    assert not torch.equal(a[1]["gt"], a[7]["gt"])  # same image (7 % 6 == 1), another crop
    a.set_epoch(1)
    assert not torch.equal(a[7]["gt"], first)
    a.set_epoch(0)
    assert torch.equal(a[7]["gt"], first)
    other_seed = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, seed=4, repeat=2)
    assert not torch.equal(other_seed[7]["gt"], first)
    with pytest.raises(IndexError):
        a[12]


def test_epochs_give_different_crops(hr_dir: Path) -> None:
    ds = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, hflip=False, rot90=False)
    crops = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        crops.append(ds[2]["gt"])
    assert len({c.numpy().tobytes() for c in crops}) == 4


def test_y_channel_mode(hr_dir: Path) -> None:
    rgb = TrainDataset(roots=[hr_dir], scale=3, gt_size=12, seed=5)
    y = TrainDataset(roots=[hr_dir], scale=3, gt_size=12, seed=5, channels="y")
    for i in range(len(y)):
        item = y[i]
        assert item["lq"].shape == (1, 4, 4)
        assert item["gt"].shape == (1, 12, 12)
        # Y of the RGB patch (same crop and flip: the same generator draws).
        rgb_item = rgb[i]
        torch.testing.assert_close(item["gt"], rgb_to_y(rgb_item["gt"]), rtol=0, atol=1e-6)
        torch.testing.assert_close(item["lq"], rgb_to_y(rgb_item["lq"]), rtol=0, atol=1e-6)
        assert (
            16 / 255 - 1e-6
            <= float(item["gt"].min())
            <= float(item["gt"].max())
            <= 235 / 255 + 1e-6
        )
    # The gray BMP has Y = its gray level (studio swing).
    gray_index = [p.name for p in y.files].index("gray.bmp")
    g = rgb[gray_index]["gt"]
    torch.testing.assert_close(y[gray_index]["gt"], (16 + 219 * g[:1]) / 255, rtol=0, atol=1e-5)


def test_small_images_padded_or_skipped_with_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _hr_folder(tmp_path / "hr", [(40, 40), (10, 30), (25, 12), (48, 33)])
    with caplog.at_level(logging.WARNING, logger="superres.data.training"):
        skip = TrainDataset(roots=[folder], scale=4, gt_size=32, small_images="skip")
    assert len(skip) == 2
    assert [p.name for p in skip.skipped] == ["img01.png", "img02.png"]
    assert "skipped 2 of 4 HR images smaller than gt_size=32: img01.png, img02.png" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="superres.data.training"):
        pad = TrainDataset(roots=[folder], scale=4, gt_size=32, small_images="pad")
    assert len(pad) == 4
    assert "reflect-padded 2 of 4" in caplog.text
    for i in range(4):
        assert pad[i]["gt"].shape == (3, 32, 32)
        assert pad[i]["lq"].shape == (3, 8, 8)
    # The padded HR is the reflection of the original (then mod-cropped) and its LR is the
    # benchmark LR of that whole padded image.
    pad.hflip = pad.rot90 = False
    hr = mod_crop(pad_to_min_size(read_image(folder / "img01.png").rgb, 32), 4)
    assert hr.shape == (3, 32, 28 + 4)
    item = pad[1]
    top, left = _find(item["gt"], hr)
    lr = bicubic_downscale(hr, 4)
    assert torch.equal(item["lq"], lr[:, top // 4 : top // 4 + 8, left // 4 : left // 4 + 8])
    none = TrainDataset(roots=[folder], scale=4, gt_size=32, small_images="skip", cache="none")
    assert len(none) == 2
    assert torch.equal(none[1]["gt"], skip[1]["gt"])
    with pytest.raises(DatasetNotFoundError, match="all 4 HR images are smaller"):
        TrainDataset(roots=[folder], scale=4, gt_size=64, small_images="skip")


def test_several_roots_files_and_errors(tmp_path: Path) -> None:
    a = _hr_folder(tmp_path / "a", [(20, 20), (20, 24)])
    b = _hr_folder(tmp_path / "b", [(24, 20)], ext=".jpg")
    ds = TrainDataset(roots=[a, str(b)], scale=2, gt_size=8, repeat=3)
    assert len(ds) == 9
    assert [p.parent.name for p in ds.files] == ["a", "a", "b"]
    train, _ = holdout_split(ds.files, fraction=0.34, seed=0)
    sub = TrainDataset(roots=[], files=train, scale=2, gt_size=8)
    assert len(sub) == 2
    both = TrainDataset(roots=[a], files=[a / "img00.png"], scale=2, gt_size=8)
    assert len(both) == 2  # duplicates used once
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        TrainDataset(roots=[tmp_path / "missing"], scale=2, gt_size=8)
    with pytest.raises(DatasetNotFoundError, match="is a file"):
        TrainDataset(roots=[a / "img00.png"], scale=2, gt_size=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no images"):
        TrainDataset(roots=[tmp_path / "empty"], scale=2, gt_size=8)
    with pytest.raises(DatasetNotFoundError, match="no HR images"):
        TrainDataset(roots=[], scale=2, gt_size=8)
    with pytest.raises(ValueError, match="multiple of scale 3"):
        TrainDataset(roots=[a], scale=3, gt_size=8)
    with pytest.raises(ValueError, match="repeat"):
        TrainDataset(roots=[a], scale=2, gt_size=8, repeat=0)
    with pytest.raises(ValueError, match="channels"):
        TrainDataset(roots=[a], scale=2, gt_size=8, channels="ycbcr")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of folders"):
        TrainDataset(roots=a, scale=2, gt_size=8)  # type: ignore[arg-type]


# --- PairedDataset --------------------------------------------------------------------------------


def _paired_folders(tmp_path: Path, scale: int = 2) -> tuple[Path, Path]:
    gt_root, lq_root = tmp_path / "gt", tmp_path / "lq"
    gt_root.mkdir()
    lq_root.mkdir()
    for i, name in enumerate(["0001", "0002", "0003"]):
        hr = read_image(_save(gt_root / f"{name}.png", 20 + 2 * i, 24, seed=i)).rgb
        lr = bicubic_downscale(hr, scale)
        lq_name = f"{name}x{scale}.png" if name == "0003" else f"{name}.png"  # both namings
        Image.fromarray((lr * 255).round().byte().permute(1, 2, 0).numpy()).save(lq_root / lq_name)
    return lq_root, gt_root


def test_paired_dataset_crops_aligned_pairs(tmp_path: Path) -> None:
    lq_root, gt_root = _paired_folders(tmp_path)
    ds = PairedDataset(lq_root=lq_root, gt_root=gt_root, scale=2, gt_size=8, seed=1)
    assert len(ds) == 3
    assert [(lq.name, gt.name) for lq, gt in ds.pairs] == [
        ("0001.png", "0001.png"),
        ("0002.png", "0002.png"),
        ("0003x2.png", "0003.png"),
    ]
    plain = PairedDataset(
        lq_root=lq_root, gt_root=gt_root, scale=2, gt_size=8, hflip=False, rot90=False
    )
    for i in range(3):
        item = plain[i]
        assert item["lq"].shape == (3, 4, 4)
        assert item["gt"].shape == (3, 8, 8)
        hr = read_image(ds.pairs[i][1]).rgb
        top, left = _find(item["gt"], hr)
        lr = read_image(ds.pairs[i][0]).rgb
        assert torch.equal(item["lq"], lr[:, top // 2 : top // 2 + 4, left // 2 : left // 2 + 4])
    y = PairedDataset(lq_root=lq_root, gt_root=gt_root, scale=2, gt_size=8, channels="y")
    assert y[0]["lq"].shape == (1, 4, 4)


def test_paired_dataset_mismatches(tmp_path: Path) -> None:
    lq_root, gt_root = _paired_folders(tmp_path)
    _save(gt_root / "0004.png", 20, 20)
    _save(lq_root / "extra.png", 10, 10)
    with pytest.raises(PairingError) as info:
        PairedDataset(lq_root=lq_root, gt_root=gt_root, scale=2, gt_size=8)
    message = str(info.value)
    assert "1 HR image(s)" in message
    assert "0004.png" in message
    assert "1 LR image(s)" in message
    assert "extra.png" in message
    (gt_root / "0004.png").unlink()
    (lq_root / "extra.png").unlink()
    (lq_root / "0003x2.png").rename(lq_root / "0003.png")
    with pytest.raises(PairingError, match=r"at x3 the HR must be"):
        PairedDataset(lq_root=lq_root, gt_root=gt_root, scale=3, gt_size=9)
    with pytest.raises(ImageTooSmallError, match="smaller than gt_size=22"):
        PairedDataset(lq_root=lq_root, gt_root=gt_root, scale=2, gt_size=22)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        PairedDataset(lq_root=tmp_path / "nope", gt_root=gt_root, scale=2, gt_size=8)


# --- holdout split --------------------------------------------------------------------------------


def test_holdout_split_is_seeded_disjoint_and_order_free() -> None:
    files = [Path(f"img{i:03d}.png") for i in range(50)]
    train, hold = holdout_split(files, fraction=0.1, seed=0)
    assert len(hold) == 5
    assert len(train) == 45
    assert set(train).isdisjoint(hold)
    assert set(train) | set(hold) == set(files)
    assert holdout_split(list(reversed(files)), fraction=0.1, seed=0) == (train, hold)
    assert holdout_split(files, fraction=0.1, seed=1)[1] != hold
    assert train == sorted(train)
    assert hold == sorted(hold)
    assert holdout_split(files[:3], fraction=0.01, seed=0)[1] != []  # at least one
    assert holdout_split(files, fraction=0.0, seed=0) == (files, [])
    with pytest.raises(ValueError, match="fraction"):
        holdout_split(files, fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="nothing to train on"):
        holdout_split(files[:1], fraction=0.5, seed=0)


# --- sampler --------------------------------------------------------------------------------------


def test_sampler_ranks_are_disjoint_equal_and_cover_everything() -> None:
    n = 11
    ranks = [ResumableSampler(n, seed=0, rank=r, world_size=2) for r in range(2)]
    shares = [list(s) for s in ranks]
    assert [len(s) for s in shares] == [6, 6] == [len(s) for s in ranks]
    assert set(shares[0]) | set(shares[1]) == set(range(n))
    # 12 slots for 11 indices: exactly one index is repeated (padding), the rest disjoint.
    assert len(set(shares[0]) & set(shares[1])) == 1
    even = [list(ResumableSampler(10, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert set(even[0]).isdisjoint(even[1])
    assert sorted(even[0] + even[1]) == list(range(10))
    single = list(ResumableSampler(10, seed=0))
    assert sorted(single) == list(range(10))
    assert single != list(range(10))
    assert even[0] == single[0::2]
    assert even[1] == single[1::2]
    assert list(ResumableSampler(5, seed=0, shuffle=False)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="rank"):
        ResumableSampler(10, seed=0, rank=2, world_size=2)


def test_sampler_order_depends_on_seed_and_epoch_only() -> None:
    a, b = ResumableSampler(20, seed=1), ResumableSampler(20, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(ResumableSampler(20, seed=2)) != first


def test_sampler_resumes_mid_epoch_exactly() -> None:
    full = ResumableSampler(23, seed=7)
    full.set_epoch(3)
    order = list(full)
    s = ResumableSampler(23, seed=7)
    s.set_epoch(3)
    s.set_position(8)
    state = s.state_dict()
    assert state == {"epoch": 3, "position": 8}
    resumed = ResumableSampler(23, seed=7)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the usual top-of-epoch call keeps the position
    assert len(resumed) == 15
    assert list(resumed) == order[8:]
    resumed.set_epoch(4)  # a new epoch starts from the beginning
    full.set_epoch(4)
    assert list(resumed) == list(full)
    with pytest.raises(ValueError, match="position"):
        resumed.set_position(24)
    with pytest.raises(ValueError, match="lacks"):
        resumed.load_state_dict({"epoch": 1})


# --- loader ---------------------------------------------------------------------------------------


def _batches(loader: torch.utils.data.DataLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b["lq"], b["gt"]) for b in loader]


def _equal(a: list[tuple[torch.Tensor, torch.Tensor]], b: list[tuple[torch.Tensor, torch.Tensor]]):
    return len(a) == len(b) and all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )


def test_workers_do_not_change_batches_and_epochs_reach_workers(hr_dir: Path) -> None:
    def run(workers: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        ds = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, repeat=3, seed=11)
        sampler = ResumableSampler(len(ds), seed=11)
        loader = build_train_loader(ds, sampler, batch_size=4, num_workers=workers, pin_memory=True)
        epochs = []
        for epoch in range(2):
            sampler.set_epoch(epoch)  # the loader hands it to the dataset in every worker
            epochs.append(_batches(loader))
        return epochs

    rng_before = torch.get_rng_state()
    serial, parallel = run(0), run(2)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is untouched
    assert len(serial[0]) == 18 // 4  # drop_last
    assert serial[0][0][0].shape == (4, 3, 4, 4)
    assert serial[0][0][1].shape == (4, 3, 8, 8)
    assert _equal(serial[0], parallel[0])
    assert _equal(serial[1], parallel[1])
    assert not torch.equal(serial[0][0][1], serial[1][0][1])


def test_loader_resumes_mid_epoch(hr_dir: Path) -> None:
    ds = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, repeat=4, seed=2)
    sampler = ResumableSampler(len(ds), seed=2)
    sampler.set_epoch(1)
    full = _batches(build_train_loader(ds, sampler, batch_size=3, num_workers=0, pin_memory=False))
    assert len(full) == 8
    # A fresh process resumes after 3 batches of epoch 1.
    ds2 = TrainDataset(roots=[hr_dir], scale=2, gt_size=8, repeat=4, seed=2)
    sampler2 = ResumableSampler(len(ds2), seed=2)
    sampler2.load_state_dict({"epoch": 1, "position": 9})
    loader2 = build_train_loader(ds2, sampler2, batch_size=3, num_workers=2, pin_memory=False)
    assert len(loader2) == 5
    assert _equal(_batches(loader2), full[3:])


def test_loader_argument_errors(hr_dir: Path) -> None:
    ds = TrainDataset(roots=[hr_dir], scale=2, gt_size=8)
    sampler = ResumableSampler(len(ds), seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        build_train_loader(ds, sampler, batch_size=0, num_workers=0, pin_memory=False)
    with pytest.raises(ValueError, match="num_workers"):
        build_train_loader(ds, sampler, batch_size=2, num_workers=-1, pin_memory=False)


# --- real data ------------------------------------------------------------------------------------


@pytest.mark.data
def test_t91_patches_match_the_benchmark_lr(data_root: Path) -> None:
    hr_dir = data_root / "T91" / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"T91 not found under {data_root}")
    files = sorted(hr_dir.iterdir())[:4]
    ds = TrainDataset(
        roots=[], files=files, scale=4, gt_size=32, repeat=2, hflip=False, rot90=False
    )
    assert len(ds) == 8
    for i in (0, 5):
        item = ds[i]
        hr = mod_crop(read_image(ds.files[i % 4]).rgb, 4)
        top, left = _find(item["gt"], hr)
        lr = bicubic_downscale(hr, 4)
        assert torch.equal(item["lq"], lr[:, top // 4 : top // 4 + 8, left // 4 : left // 4 + 8])
    loader = build_train_loader(
        ds, ResumableSampler(len(ds), seed=0), batch_size=4, num_workers=0, pin_memory=False
    )
    batch = next(iter(loader))
    assert batch["gt"].shape == (4, 3, 32, 32)
    assert batch["lq"].shape == (4, 3, 8, 8)
