"""`torchrun ... -m superres upscale`: files sharded across ranks, read from torchrun's env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.inference.jobs import Job, Source, shard
from superres.runtime import DistributedEnv, DistributedEnvError


def _jobs(n: int) -> list[Job]:
    return [Job(Source(f"{i}.png", Path(f"{i}.png")), Path(f"{i}_x4.png")) for i in range(n)]


@pytest.mark.parametrize("count", [0, 1, 2, 5, 7, 16])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_every_file_goes_to_exactly_one_rank(count: int, world_size: int) -> None:
    jobs = _jobs(count)
    shards = [shard(jobs, rank, world_size) for rank in range(world_size)]
    names = [j.source.name for s in shards for j in s]
    assert sorted(names) == sorted(j.source.name for j in jobs)  # all of them ...
    assert len(names) == len(set(names))  # ... once each
    sizes = [len(s) for s in shards]
    assert max(sizes, default=0) - min(sizes, default=0) <= 1  # balanced by count


def test_shards_are_deterministic_and_keep_the_input_order() -> None:
    jobs = _jobs(7)
    assert [shard(jobs, r, 3) for r in range(3)] == [shard(list(jobs), r, 3) for r in range(3)]
    assert [j.source.name for j in shard(jobs, 1, 3)] == ["1.png", "4.png"]
    assert shard(jobs, 0, 1) == jobs


def test_torchrun_environment_is_what_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert DistributedEnv.from_env() is None  # a plain run
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert DistributedEnv.from_env() is None  # torchrun with one process: no process group
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")  # e.g. the second of two nodes
    env = DistributedEnv.from_env()
    assert env == DistributedEnv(rank=3, world_size=4, local_rank=1)
    assert env is not None
    assert env.device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert env.device("auto") == "cpu"
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedEnvError, match="RANK=4"):
        DistributedEnv.from_env()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(DistributedEnvError, match="torchrun environment"):
        DistributedEnv.from_env()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _torchrun(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "superres", "upscale", str(src), "-o", str(out),
        "--model", "bicubic", "--scale", "2", "--device", "cpu", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _folder(tmp_path: Path, count: int) -> tuple[Path, Path]:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 256, (6, 7, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(src / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    return src, out


def test_two_cpu_processes_share_a_folder(tmp_path: Path) -> None:
    src, out = _folder(tmp_path, 5)
    (src / "bad.png").write_bytes(b"not an image")  # sorted after 0..4: job 5, rank 1's
    done = _torchrun(src, out)
    log = done.stdout + done.stderr
    assert done.returncode != 0, log  # one image failed on rank 1: the run fails
    assert "rank 0 of 2: 3 of 6 image(s)" in log, log
    assert "rank 1 of 2: 3 of 6 image(s)" in log, log
    assert log.count("1 of 6 image(s) failed (5 written") == 1, log  # one summary, by rank 0
    assert "bad.png" in log
    assert _files(out) == [f"{i}_x2.png" for i in range(5)]  # no partial or temporary file
    for i in range(5):
        with Image.open(out / f"{i}_x2.png") as im:
            assert (im.mode, im.size) == ("RGB", (14, 12))


@pytest.mark.slow
def test_sharded_rerun_with_skip_existing_writes_only_what_is_missing(tmp_path: Path) -> None:
    src, out = _folder(tmp_path, 5)
    done = _torchrun(src, out)
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "3_x2.png").unlink()  # as if the run had stopped before this image
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    done = _torchrun(src, out, "--skip-existing")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _files(out) == [f"{i}_x2.png" for i in range(5)]
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert {n: after[n] for n in before} == before
