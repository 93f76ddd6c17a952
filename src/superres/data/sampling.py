"""Which training items, in which order: seeded, resumable, sharded; and the loader over them.

Determinism. Item ``index`` of epoch ``epoch`` is a pure function of ``(seed, epoch, index)``: its
``torch.Generator`` is seeded with :func:`mix_seed` of those three numbers, so it does not matter
which worker process builds it or in which order. The visiting order comes from
:class:`ResumableSampler`, a pure function of ``(seed, epoch)``, which can resume in the middle of
an epoch; :func:`build_train_loader` hands the sampler's epoch to the dataset at every pass.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from superres.errors import check_positive

__all__ = [
    "ResumableSampler",
    "build_train_loader",
    "holdout_split",
    "mix_seed",
]

Batch = dict[str, torch.Tensor]


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers; unlike ``seed + epoch`` distinct tuples do not collide."""
    data = b"".join(int(p).to_bytes(16, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def holdout_split(
    files: Sequence[Path], *, fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """Split files into (train, holdout), reproducibly.

    The files are sorted first, so the split depends only on the set of files, ``fraction`` and
    ``seed``, not on the order given. The holdout gets ``round(fraction * n)`` files, at least one
    when ``fraction > 0``; both parts are returned sorted and are disjoint.

    Raises:
        ValueError: ``fraction`` outside [0, 1), or a split that leaves no training file.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    ordered = sorted({Path(f) for f in files})
    n = len(ordered)
    n_hold = 0 if fraction == 0 else max(1, round(fraction * n))
    if n_hold >= n:
        raise ValueError(
            f"holdout fraction {fraction} of {n} file(s) leaves nothing to train on; "
            "use more files or a smaller fraction"
        )
    generator = torch.Generator().manual_seed(mix_seed(seed))
    perm = torch.randperm(n, generator=generator).tolist()
    hold = set(perm[:n_hold])
    train = [p for i, p in enumerate(ordered) if i not in hold]
    holdout = [p for i, p in enumerate(ordered) if i in hold]
    return train, holdout


class ResumableSampler(Sampler[int]):
    """Seeded shuffling over ``range(dataset_len)``, sharded across ranks, resumable mid-epoch.

    The permutation of an epoch depends only on ``(seed, epoch)``. Rank ``r`` of ``world_size``
    takes every ``world_size``-th index from ``r``; the permutation is padded (with its first
    indices) to a multiple of ``world_size``, so all ranks yield the same count, as
    ``torch.utils.data.DistributedSampler`` does.

    ``position`` is how many of this rank's indices of the current epoch were already consumed;
    iteration starts there. The sampler cannot know what the trainer consumed (a DataLoader fetches
    ahead), so the trainer sets it: ``set_position(n)`` (e.g. batches done x batch size) before
    saving ``state_dict()``, and ``load_state_dict`` on resume. ``set_epoch`` to a *different*
    epoch resets the position to 0; calling it with the current epoch keeps it, so a resumed loop
    may call ``set_epoch`` at the top of each epoch as usual.

    The dataset must see the same epoch: :func:`build_train_loader` passes it on at each pass.
    """

    def __init__(
        self,
        dataset_len: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        self.dataset_len = check_positive("dataset_len", dataset_len)
        self.world_size = check_positive("world_size", world_size)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank!r}")
        self.rank = rank
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.num_samples = math.ceil(dataset_len / world_size)
        self.total_size = self.num_samples * world_size
        self.epoch = 0
        self.position = 0

    def indices(self) -> list[int]:
        """This rank's full index list for the current epoch (ignoring the position)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
            order = torch.randperm(self.dataset_len, generator=generator).tolist()
        else:
            order = list(range(self.dataset_len))
        pad = self.total_size - len(order)
        if pad:
            order += (order * math.ceil(pad / len(order)))[:pad]
        return order[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        # A list, not a generator: the position is read now, not at the first next().
        return iter(self.indices()[self.position :])

    def __len__(self) -> int:
        """Indices the next iteration yields: ``num_samples - position``."""
        return self.num_samples - self.position

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; a different epoch than the current one starts at position 0."""
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    def set_position(self, position: int) -> None:
        """Mark ``position`` of this rank's indices of the current epoch as consumed."""
        position = int(position)
        if not 0 <= position <= self.num_samples:
            raise ValueError(
                f"position must be in [0, {self.num_samples}] (indices per rank per epoch), "
                f"got {position}"
            )
        self.position = position

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": ..., "position": ...}``: where to continue."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict` (same dataset length, seed and world size)."""
        missing = {"epoch", "position"} - set(state)
        if missing:
            raise ValueError(f"sampler state lacks {sorted(missing)}; got keys {sorted(state)}")
        epoch = int(state["epoch"])
        if epoch < 0:
            raise ValueError(f"sampler state has a negative epoch {epoch}")
        self.epoch = epoch
        self.set_position(int(state["position"]))


def _seed_worker(worker_id: int) -> None:
    """Seed Python's and NumPy's RNGs in a worker from torch's per-worker seed.

    Items draw their randomness from their own generator, so this only keeps third-party code in
    workers from sharing one NumPy stream.
    """
    del worker_id
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global RNG is what third-party code uses


class _EpochSyncedLoader(DataLoader[Batch]):
    """A DataLoader that gives the dataset its sampler's epoch at the start of every pass.

    Workers are not persistent, so each pass starts new workers holding the dataset as it is then
    (with fork, the cached images are shared copy-on-write; with spawn they travel through shared
    memory). Persistent workers would keep the epoch of the first pass forever.
    """

    def __iter__(self):  # DataLoader's iterator classes are private
        sampler = self.sampler
        dataset = self.dataset
        set_epoch = getattr(dataset, "set_epoch", None)
        if isinstance(sampler, ResumableSampler) and callable(set_epoch):
            set_epoch(sampler.epoch)
        return super().__iter__()


def build_train_loader(
    dataset: Dataset[Batch],
    sampler: ResumableSampler,
    *,
    batch_size: int,
    num_workers: int,
    pin_memory: bool,
    drop_last: bool = True,
) -> DataLoader[Batch]:
    """A DataLoader over ``dataset`` in ``sampler``'s order; batches do not depend on workers.

    Each pass (``iter(loader)``) first calls ``dataset.set_epoch(sampler.epoch)``, in the main
    process, before workers start, so every worker crops for the right epoch. Batches are
    ``{"lq": (B, C, h, w), "gt": (B, C, H, W)}``, identical for any ``num_workers``. The
    DataLoader's own base seed comes from a generator seeded with ``sampler.seed``, so iterating
    never consumes torch's global RNG. ``pin_memory`` is honoured only when CUDA is available.

    Raises:
        ValueError: ``batch_size < 1`` or ``num_workers < 0``.
    """
    check_positive("batch_size", batch_size)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    return _EpochSyncedLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=bool(pin_memory) and torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=False,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(mix_seed(sampler.seed, 1)),
    )
