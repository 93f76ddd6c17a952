"""The training loop: PSNR-oriented and GAN stages, resumable, single process or DDP.

Read it top to bottom: :class:`Trainer` sets up the process group, device and precision (once,
here), the data, the networks, the losses and the optimizers; :meth:`Trainer.fit` runs
iterations, logs, validates and checkpoints.

Two modes (``train.mode``):

* ``psnr`` — one network trained with pixel/structural losses (SRCNN, SRResNet, EDSR, RRDBNet's
  PSNR stage, ESRGAN-Pro's Mix loss).
* ``gan`` — SRGAN/ESRGAN: the generator starts from a PSNR checkpoint (``train.pretrained``); each
  iteration updates the generator on ``pixel + perceptual + adversarial`` terms with the
  discriminator frozen, then the discriminator on real vs generated images. During the first
  ``train.d_init_iters`` iterations only the discriminator learns (ESRGAN/BasicSR's warm-up).

Distributed (``torchrun --nproc_per_node N -m superres train ...``): one process per GPU (NCCL) or
per CPU worker (gloo). ``data.batch_size`` is the global batch; the sampler gives each rank a
disjoint strided share, so with N ranks batch ``i`` holds exactly the images of the one-process
batch ``i``. Gradients are averaged by DistributedDataParallel; batch norm becomes SyncBatchNorm on
GPUs (on CPU torch has no SyncBatchNorm: batch statistics stay per rank, which we log as a
warning). Only rank 0 logs, validates and writes checkpoints; the other ranks wait at a barrier,
so validation cannot deadlock a collective.

Determinism: the data order and every augmentation depend only on ``(seed, epoch, index)``, the
checkpoint stores the position inside the epoch and all RNG states, so a run stopped at any moment
(even SIGKILL) and resumed with ``--resume auto`` continues to the same losses as an uninterrupted
run (bitwise on CPU; GPU kernels may differ in the last bits).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader

from superres.data.catalog import DATASETS, dataset_hr_dir, list_image_files, resolve_data_root
from superres.data.datasets import BenchmarkImage, BenchmarkSet, bicubic_downscale, mod_crop
from superres.data.device_pipeline import DeviceBatches
from superres.data.training import (
    ResumableSampler,
    TrainDataset,
    build_train_loader,
    holdout_split,
)
from superres.errors import ConfigError, SuperresError
from superres.evaluation.protocol import (
    prepare_network,
    score_output,
    set_mean,
    super_resolve,
)
from superres.io.image import read_image
from superres.losses import LOSSES, build_loss
from superres.models import DISCRIMINATORS, create_model, load_weights, save_weights
from superres.models.descriptor import describe_network
from superres.runtime import DistributedEnv, resolve_device, resolve_precision
from superres.training.checkpoint import (
    STATE_FILE,
    WEIGHTS_BEST,
    WEIGHTS_LAST,
    CheckpointError,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)
from superres.training.config import (
    RESUMABLE_KEYS,
    Recipe,
    RunOptions,
    recipe_changes,
    recipe_from_checkpoint,
)
from superres.training.ema import ModelEMA, unwrap_model
from superres.training.logging import NullLogger, TrainingLogger
from superres.training.optim import build_optimizer, build_scheduler, clip_gradients

logger = logging.getLogger(__name__)

#: With several processes the time limit is agreed on (a broadcast and a host sync) this often.
_TIME_CHECK_EVERY = 10

#: Loss names grouped under the log keys of the papers' figures.
_PIXEL_LOSSES = ("mse", "l1", "charbonnier", "ssim", "ms_ssim", "mix", "tv")


# --- the edge: process group, device, precision ----------------------------------------------


#: ``memory_format`` choices of :class:`~superres.training.config.RunOptions`.
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def fastest_memory_format(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int, int],
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> tuple[str, dict[str, float]]:
    """The layout a training step of ``model`` runs fastest in here, and what each one took.

    CUDA: channels_last (tensor cores want NHWC). Other GPUs: contiguous. On a CPU neither wins
    everywhere (oneDNN's NHWC kernels make SRResNet's step 1.6x faster but EDSR-baseline's with
    192-px patches 1.2x slower, ``benchmarks/train_speed.py``), so one forward and backward of a
    copy of ``model`` on random data of ``input_shape`` is timed in each (the better of two,
    after a warm-up): the model, its statistics and every random stream are left untouched.
    """
    if device.type != "cpu":
        return ("channels_last" if device.type == "cuda" else "contiguous"), {}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(input_shape, generator=generator)
    seconds: dict[str, float] = {}
    for name, fmt in MEMORY_FORMATS.items():
        probe = copy.deepcopy(model).train().to(memory_format=fmt)  # pyright: ignore[reportCallIssue]
        xin = x.contiguous(memory_format=fmt)
        timings = []
        for _ in range(3):  # a warm-up (oneDNN builds its kernels), then the best of two
            start = time.perf_counter()
            with contextlib.ExitStack() as stack:
                if amp_dtype is not None:
                    stack.enter_context(torch.autocast("cpu", dtype=amp_dtype))
                out = probe(xin)
            out.float().mean().backward()
            timings.append(time.perf_counter() - start)
        seconds[name] = min(timings[1:])
        del probe
    return min(seconds, key=lambda k: seconds[k]), seconds


# --- data -------------------------------------------------------------------------------------


def resolve_train_files(roots: tuple[str, ...], data_root: Path) -> list[Path]:
    """HR files of ``roots``: catalog names (``t91``), paths under the data root, or absolute."""
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
        found = list_image_files(folder)
        if not found:
            raise ConfigError(f"data.train_roots: {folder} holds no images")
        files.extend(found)
    return files


def _validation_pairs(recipe: Recipe, data_root: Path, holdout: list[Path]) -> list[BenchmarkImage]:
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


def loss_kwargs_for_run(
    name: str, kwargs: dict[str, Any], *, data_root: Path, scale: int, download: bool = False
) -> dict[str, Any]:
    """A recipe's loss arguments with what the run knows filled in: a relative ``weights:`` path
    that is not found from the working folder resolves against ``data_root`` (recipes name files,
    not machines); a loss whose constructor takes ``data_root`` (LPIPS finds its heads and trunk
    there) gets the run's unless the recipe names another, and one that takes ``download`` the
    run's permission to download its pinned files; and a loss that takes ``scale`` (the
    sub-pixel pattern guard) gets the recipe's upscaling factor. A ``scale`` that contradicts the
    recipe's is a mistake, not a choice, and is refused."""
    out = dict(kwargs)
    params = inspect.signature(LOSSES.get(name)).parameters
    if "data_root" in params and out.get("data_root") is None:
        out["data_root"] = str(data_root)
    if "download" in params:
        out["download"] = download
    if "scale" in params:
        given = out.setdefault("scale", scale)
        if given != scale:
            raise ConfigError(
                f"loss {name!r}: scale {given!r} contradicts the recipe's scale {scale}; "
                "drop the loss's scale (it follows the recipe) or make the two agree."
            )
    value = out.get("weights")
    if isinstance(value, str) and "://" not in value and not Path(value).expanduser().exists():
        candidate = data_root / value
        if candidate.exists():
            out["weights"] = str(candidate)
    return out


# --- the trainer ------------------------------------------------------------------------------


class Trainer:
    """One training run of ``recipe`` with the system choices of ``options``."""

    def __init__(
        self, recipe: Recipe, options: RunOptions, *, resume_from: Path | None = None
    ) -> None:
        self.recipe = recipe
        self.options = options
        env = DistributedEnv.from_env()
        device = resolve_device(env.device(options.device) if env else options.device)
        if env is not None:
            env.init(device)
        self.dist = env or DistributedEnv()
        self.device = device
        if device.type == "cuda":
            # Fixed patch sizes: let cuDNN pick the fastest kernels once.
            torch.backends.cudnn.benchmark = True
        self.amp_dtype = resolve_precision(options.precision, device, training=True)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp_dtype == torch.float16 and device.type == "cuda"
        )
        self.out_dir = options.out_dir
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._check_resume_target()

        train = recipe.train
        world = self.dist.world_size
        if recipe.data.batch_size % world:
            raise ConfigError(
                f"data.batch_size {recipe.data.batch_size} is the global batch and must divide "
                f"by the {world} processes"
            )
        self.local_batch = recipe.data.batch_size // world

        # Data: files, the seeded hold-out split, the dataset and its resumable sampler.
        self.data_root = resolve_data_root(options.data_root)
        files = resolve_train_files(recipe.data.train_roots, self.data_root)
        holdout: list[Path] = []
        if recipe.data.holdout_fraction > 0:
            files, holdout = holdout_split(
                files, fraction=recipe.data.holdout_fraction, seed=recipe.seed
            )
        self.dataset = TrainDataset(
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
        if len(self.dataset) < recipe.data.batch_size:
            raise ConfigError(
                f"the training set has {len(self.dataset)} items, fewer than one batch of "
                f"{recipe.data.batch_size}; add images or raise data.repeat"
            )
        self.sampler = ResumableSampler(
            len(self.dataset), seed=recipe.seed, rank=self.dist.rank, world_size=world
        )
        # The batches: cut on the training device from the cached images, or built by workers.
        self.device_batches: DeviceBatches | None = None
        self.loader: DataLoader[dict[str, torch.Tensor]] | None = None
        if recipe.data.pipeline == "device":
            self.device_batches = DeviceBatches(
                self.dataset, self.sampler, batch_size=self.local_batch, device=device
            )
        else:
            self.loader = build_train_loader(
                self.dataset,
                self.sampler,
                batch_size=self.local_batch,
                num_workers=options.num_workers,
                pin_memory=device.type == "cuda",
            )
        self.val_pairs = (
            _validation_pairs(recipe, self.data_root, holdout) if self.dist.is_main else []
        )

        # Networks: identical initial weights on every rank (seeded), then per-rank RNG streams.
        torch.manual_seed(recipe.seed)
        self.net_g = create_model(recipe.model.name, scale=recipe.scale, **recipe.model.kwargs)
        if train.pretrained is not None and resume_from is None:
            self._load_pretrained(train.pretrained)
        self.net_d: nn.Module | None = None
        if recipe.discriminator is not None:
            builder = DISCRIMINATORS.get(recipe.discriminator.name)
            self.net_d = builder(**recipe.discriminator.kwargs)
        torch.manual_seed(recipe.seed + self.dist.rank)

        state = load_state(resume_from) if resume_from is not None else None
        self.memory_format = self._choose_memory_format(state)
        self.net_g = self._prepare(self.net_g)
        if self.net_d is not None:
            self.net_d = self._prepare(self.net_d)
        self.ema = (
            # From pretrained weights the average starts at them, at the full decay: the
            # warm-up (meant to forget random initial weights) would let the first, largest
            # steps of a fresh optimizer pull it away from a model that is already good.
            ModelEMA(
                unwrap_model(self.net_g),
                decay=train.ema_decay,
                warmup=train.pretrained is None,
            )
            if train.ema_decay is not None
            else None
        )

        # Losses: `gan` is special (it needs the discriminator); every other term is f(sr, gt).
        self.pixel_terms: list[tuple[str, nn.Module]] = []
        self.gan_loss: Any = None
        for term in train.losses:
            kwargs = loss_kwargs_for_run(
                term.name,
                term.kwargs,
                data_root=self.data_root,
                scale=recipe.scale,
                download=options.download,
            )
            loss = build_loss(term.name, **kwargs).to(device)
            if term.name == "gan":
                self.gan_loss = loss
            else:
                self.pixel_terms.append((self._log_key(term.name), loss))

        # Optimizers and per-iteration schedules.
        self.opt_g = build_optimizer(
            unwrap_model(self.net_g).parameters(),
            name=train.optimizer.name,
            lr=train.optimizer.lr,
            betas=train.optimizer.betas,
            weight_decay=train.optimizer.weight_decay,
            eps=train.optimizer.eps,
            fused=device.type in ("cuda", "cpu"),
        )
        self.sched_g = self._scheduler(self.opt_g, train.scheduler)
        self.opt_d = self.sched_d = None
        if self.net_d is not None:
            self.opt_d = build_optimizer(
                self.net_d.parameters(),
                name=train.optimizer_d.name,
                lr=train.optimizer_d.lr,
                betas=train.optimizer_d.betas,
                weight_decay=train.optimizer_d.weight_decay,
                eps=train.optimizer_d.eps,
                fused=device.type in ("cuda", "cpu"),
            )
            self.sched_d = self._scheduler(self.opt_d, train.scheduler_d)

        self.step = 0
        self.epoch = 0
        self.position = 0  # indices of this rank already consumed in the current epoch
        self.best_psnr = -math.inf
        # Sums of the losses since the last log line: logs show window means, not one noisy step.
        self.window: dict[str, torch.Tensor] = {}
        self.window_counts: dict[str, int] = {}
        if resume_from is not None and state is not None:
            self._resume(resume_from, state)

    # --- setup helpers ------------------------------------------------------------------------

    def _check_resume_target(self) -> None:
        state = self.out_dir / STATE_FILE
        if self.options.resume == "never" and state.exists():
            raise SuperresError(
                f"{self.out_dir} already holds a run ({STATE_FILE}); continue it with "
                "--resume auto, or pick another --out folder (nothing was overwritten)"
            )

    def _log_key(self, name: str) -> str:
        if name in _PIXEL_LOSSES:
            taken = [k for k, _ in self.pixel_terms]
            return "loss_pix" if "loss_pix" not in taken else f"loss_pix_{name}"
        if name == "perceptual":
            return "loss_percep"
        return f"loss_{name}"

    def _scheduler(self, optimizer: torch.optim.Optimizer, cfg: Any) -> Any:
        return build_scheduler(
            optimizer,
            name=cfg.name,
            total_iters=self.recipe.train.total_iters,
            warmup_iters=cfg.warmup_iters,
            step_size=cfg.step_size,
            milestones=cfg.milestones,
            gamma=cfg.gamma,
            eta_min=cfg.eta_min,
        )

    def _choose_memory_format(self, state: dict[str, Any] | None) -> str:
        """The networks' layout: as asked, as the resumed run had it (so it continues with the
        same kernels), or the fastest measured here (rank 0 decides for every rank)."""
        asked = self.options.memory_format
        if asked != "auto":
            if asked not in MEMORY_FORMATS:
                raise ConfigError(
                    f"unknown memory format {asked!r}; use auto, {', '.join(MEMORY_FORMATS)}"
                )
            return asked
        stored = state.get("memory_format") if state is not None else None
        if isinstance(stored, str) and stored in MEMORY_FORMATS:
            return stored
        data = self.recipe.data
        channels = 1 if data.channels == "y" else 3
        size = data.gt_size // self.recipe.scale
        choice, seconds = fastest_memory_format(
            self.net_g,
            input_shape=(self.local_batch, channels, size, size),
            device=self.device,
            amp_dtype=self.amp_dtype,
        )
        if self.dist.world_size > 1:
            names = list(MEMORY_FORMATS)
            flag = torch.tensor([names.index(choice)], device=self._collective_device())
            dist.broadcast(flag, src=0)
            choice = names[int(flag.item())]
        if seconds and self.dist.is_main:
            timed = ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items())
            logger.info("memory format %s (one training step: %s)", choice, timed)
        return choice

    def _collective_device(self) -> torch.device:
        """Where tensors for a collective live: the GPU under NCCL, the CPU under gloo."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device).train()
        model = model.to(memory_format=MEMORY_FORMATS[self.memory_format])  # pyright: ignore[reportCallIssue]
        if self.dist.world_size > 1:
            has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
            if has_bn and self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif has_bn and self.dist.is_main:
                logger.warning(
                    "%s has batch norm: on CPU each process normalises its own share of the batch "
                    "(torch has no CPU SyncBatchNorm)",
                    type(model).__name__,
                )
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.options.compile:
            # Around DDP, as PyTorch recommends; unwrap_model() still reaches the bare network
            # for saving, EMA and validation.
            model = torch.compile(model)  # pyright: ignore[reportAssignmentType]
        return model

    def _load_pretrained(self, spec: str) -> None:
        path = Path(spec).expanduser()
        if not path.is_absolute() and not path.exists():
            path = self.out_dir.parent / path
        if not path.is_file():
            raise ConfigError(
                f"train.pretrained: {spec!r} not found (also looked for {path}); train the PSNR "
                "stage first (its run folder holds weights_last.safetensors) or fix the path"
            )
        source = load_weights(path)
        found = describe_network(source).architecture
        if found != describe_network(self.net_g).architecture:
            raise ConfigError(
                f"train.pretrained {path} holds a {found} model, but the "
                f"recipe trains {self.recipe.model.name}"
            )
        try:
            self.net_g.load_state_dict(source.state_dict())
        except RuntimeError as exc:
            raise ConfigError(
                f"train.pretrained {path} does not fit the recipe's model ({exc}); its "
                "hyperparameters must match the model section"
            ) from None
        logger.info("generator initialised from %s", path)

    # --- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        self.sampler.load_state_dict({"epoch": self.epoch, "position": self.position})
        state: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "best_psnr": self.best_psnr,
            "recipe": self.recipe.to_yaml(),
            "net_g": unwrap_model(self.net_g).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng_state(),
            "window": {k: v.detach().cpu() for k, v in self.window.items()},
            "window_counts": dict(self.window_counts),
            "memory_format": self.memory_format,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.net_d is not None and self.opt_d is not None and self.sched_d is not None:
            state["net_d"] = unwrap_model(self.net_d).state_dict()
            state["opt_d"] = self.opt_d.state_dict()
            state["sched_d"] = self.sched_d.state_dict()
        return state

    def _resume(self, path: Path, state: dict[str, Any]) -> None:
        self._check_resumed_recipe(path, state.get("recipe"))
        unwrap_model(self.net_g).load_state_dict(state["net_g"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.net_d is not None and self.opt_d is not None and self.sched_d is not None:
            unwrap_model(self.net_d).load_state_dict(state["net_d"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_d.load_state_dict(state["sched_d"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.best_psnr = float(state["best_psnr"])
        self.window = {k: v.to(self.device) for k, v in state["window"].items()}
        self.window_counts = {k: int(v) for k, v in state["window_counts"].items()}
        set_rng_state(state["rng"])
        if self.dist.world_size > 1:  # per-rank streams continue per rank
            torch.manual_seed(self.recipe.seed + self.dist.rank + 1_000_003 * self.step)
        logger.info("resumed %s at iteration %d", path, self.step)

    def _check_resumed_recipe(self, path: Path, stored: object) -> None:
        """Refuse a checkpoint of another experiment; allow (and log) a longer or shorter run
        and other logging cadences (:data:`~superres.training.config.RESUMABLE_KEYS`)."""
        fix = (
            "resume with the same YAML and --set options (only "
            f"{', '.join(sorted(RESUMABLE_KEYS))} may change), or start a new run in another "
            "--out folder"
        )
        if not isinstance(stored, str):
            raise CheckpointError(f"{path} holds no recipe; {fix}")
        try:
            old = recipe_from_checkpoint(stored, source=str(path))
        except (ConfigError, yaml.YAMLError) as exc:
            raise CheckpointError(
                f"{path} holds a recipe this version cannot read ({exc}); {fix}"
            ) from None
        changes = recipe_changes(old, self.recipe)
        fixed = {k: v for k, v in changes.items() if k not in RESUMABLE_KEYS}
        if fixed:
            listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in fixed.items())
            raise CheckpointError(f"{path} was written by a different recipe ({listed}); {fix}")
        for key, (before, after) in changes.items():
            logger.warning("resuming with %s changed from %r to %r", key, before, after)

    def _model_for_export(self) -> nn.Module:
        return self.ema.module if self.ema is not None else unwrap_model(self.net_g)

    def save_checkpoint(
        self, *, best: bool = False, metrics: dict[str, float] | None = None
    ) -> None:
        """Rank 0: weights (safetensors with the recipe) then the full training state."""
        if not self.dist.is_main:
            return
        meta = {
            "recipe_yaml": self.recipe.to_yaml(),
            "iterations": str(self.step),
            "source": self.recipe.source,
            "backproject": str(self.recipe.inference.backproject),
        }
        model = self._model_for_export()
        target = WEIGHTS_BEST if best else WEIGHTS_LAST
        save_weights(
            model, self.out_dir / target, recipe=self.recipe.name, metrics=metrics, metadata=meta
        )
        if not best:
            save_state(self.out_dir / STATE_FILE, self.state_dict())

    # --- the loop -----------------------------------------------------------------------------

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches forever, epoch after epoch, starting at the resumed position.

        Both pipelines yield the full batches of this rank's share of each epoch, in the
        sampler's order, from ``(epoch, position)`` on; a last partial batch is dropped.
        """
        while True:
            if self.device_batches is not None:
                share = self.sampler.num_samples
                while self.position + self.local_batch <= share:
                    batch = self.device_batches.batch(self.epoch, self.position)
                    self.position += self.local_batch
                    yield batch
            else:
                assert self.loader is not None
                self.sampler.load_state_dict({"epoch": self.epoch, "position": self.position})
                self.dataset.set_epoch(self.epoch)
                for batch in self.loader:
                    self.position += self.local_batch
                    yield batch
            self.epoch += 1
            self.position = 0

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _optimize(self, loss: torch.Tensor, model: nn.Module, optimizer: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.recipe.train.grad_clip is not None:
            self.scaler.unscale_(optimizer)
            clip_gradients(model.parameters(), self.recipe.train.grad_clip)
        self.scaler.step(optimizer)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One iteration; returns the detached loss values."""
        fmt = MEMORY_FORMATS[self.memory_format]
        lq = batch["lq"].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        gt = batch["gt"].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        values: dict[str, torch.Tensor] = {}
        net_d = self.net_d
        train_g = net_d is None or self.step >= self.recipe.train.d_init_iters

        if net_d is not None:
            for p in net_d.parameters():
                p.requires_grad_(False)
        with self._autocast():
            sr = self.net_g(lq)
        sr32 = sr.float()
        if train_g:
            total = torch.zeros((), device=self.device)
            for key, term in self.pixel_terms:
                value = term(sr32, gt)
                values[key] = value.detach()
                total = total + value
            if net_d is not None:
                raw_d = unwrap_model(net_d)  # frozen: plain module, no DDP collective in this step
                with self._autocast():
                    fake_logits = raw_d(sr).float()
                real_logits = None
                if self.gan_loss.gan_type == "ragan":  # a constant for the generator step
                    with torch.no_grad(), self._autocast():
                        real_logits = raw_d(gt).float()
                loss_gan = self.gan_loss.generator_loss(fake_logits, real_logits)
                values["loss_gan"] = loss_gan.detach()
                total = total + loss_gan
            values["loss_total"] = total.detach()
            self._optimize(total, self.net_g, self.opt_g)

        if net_d is not None and self.opt_d is not None:
            for p in net_d.parameters():
                p.requires_grad_(True)
            # Real and generated images in one forward pass: one DDP collective per step.
            with self._autocast():
                logits = net_d(torch.cat([gt, sr.detach()], dim=0)).float()
            real_logits, fake_logits = logits.split(gt.shape[0], dim=0)
            loss_d = self.gan_loss.discriminator_loss(real_logits, fake_logits)
            values["loss_d"] = loss_d.detach()
            values["d_real"] = real_logits.detach().mean()
            values["d_fake"] = fake_logits.detach().mean()
            self._optimize(loss_d, net_d, self.opt_d)
        self.scaler.update()

        if train_g:
            self.sched_g.step()
            if self.ema is not None:
                self.ema.update(self.net_g)
        if self.sched_d is not None:
            self.sched_d.step()
        return values

    def _reduce(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean over ranks (every rank calls this at the same steps)."""
        if not values:
            return {}
        keys = sorted(values)
        stacked = torch.stack([values[k].float() for k in keys])
        if self.dist.world_size > 1:
            dist.all_reduce(stacked)
            stacked /= self.dist.world_size
        return dict(zip(keys, stacked.tolist(), strict=True))

    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """The validation scores and the first ``validation.num_samples`` outputs.

        Every pair is scored by the evaluation protocol (:mod:`superres.evaluation.protocol`,
        in float32, output rounded half-up to 8 bit, PSNR/SSIM on Y with ``scale`` pixels
        cropped) on a copy of the network run as ``superres eval`` runs the saved weights, so
        the logged PSNR is the one ``superres eval`` reports for them, to the last digit.
        """
        # A contiguous float32 copy run as `superres eval` runs the saved file (on a CPU, the
        # fused path): the training layout or precision would move a rounding now and then.
        model = copy.deepcopy(self._model_for_export()).float()
        model = model.to(memory_format=torch.contiguous_format)  # pyright: ignore[reportCallIssue]
        model = prepare_network(model, self.device, fused=True)
        scale = self.recipe.scale
        psnrs, ssims, samples = [], [], {}
        for pair in self.val_pairs:
            sr = super_resolve(model, pair.lq, scale, device=self.device)
            value, structure = score_output(sr, pair.hr, scale)
            psnrs.append(value)
            ssims.append(structure)
            if len(samples) < self.recipe.validation.num_samples:
                samples[pair.name] = sr.to(torch.float32)
        if not psnrs:
            return {}, samples
        return {"psnr": set_mean(psnrs), "ssim": set_mean(ssims)}, samples

    def _barrier(self) -> None:
        if self.dist.world_size > 1:
            dist.barrier()

    def _out_of_time(self, started: float) -> bool:
        """Whether the time limit has passed, decided by rank 0 for every rank.

        One process asks the clock (no tensor, no device synchronisation per step); with
        several, rank 0's answer is broadcast every :data:`_TIME_CHECK_EVERY` steps.
        """
        limit = self.options.time_limit
        if limit is None:
            return False
        over = time.perf_counter() - started > limit
        if self.dist.world_size == 1:
            return over
        if self.step % _TIME_CHECK_EVERY:
            return False
        flag = torch.tensor([float(over)], device=self._collective_device())
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def fit(self) -> dict[str, float]:
        """Train to ``train.total_iters``; returns the last validation scores (rank 0)."""
        train = self.recipe.train
        val_every = self.recipe.validation.every
        log = (
            TrainingLogger(
                self.out_dir,
                total_iters=train.total_iters,
                start_iter=self.step,
                tensorboard=self.options.tensorboard,
                progress=self.options.progress,
            )
            if self.dist.is_main
            else NullLogger()
        )
        last_val: dict[str, float] = {}
        started = time.perf_counter()
        start_step = self.step
        batches = self.batches()
        try:
            while self.step < train.total_iters:
                values = self.train_step(next(batches))
                self.step += 1
                for key, value in values.items():
                    previous = self.window.get(key)
                    value = value.detach().float()
                    self.window[key] = value if previous is None else previous + value
                    self.window_counts[key] = self.window_counts.get(key, 0) + 1
                stop = self._out_of_time(started)
                last = stop or self.step == train.total_iters
                if self.step % train.log_every == 0 or last:
                    reduced = self._reduce(
                        {k: v / self.window_counts[k] for k, v in self.window.items()}
                    )
                    self.window, self.window_counts = {}, {}
                    if not all(math.isfinite(v) for v in reduced.values()):
                        raise SuperresError(
                            f"training diverged at iteration {self.step}: losses {reduced}; lower "
                            "train.optimizer.lr, set train.grad_clip, or use --precision fp32"
                        )
                    log.log_train(self.step, reduced, self.opt_g.param_groups[0]["lr"])
                if self.val_pairs and (self.step % val_every == 0 or last):
                    last_val, samples = self.validate()
                    log.log_val(self.step, last_val)
                    log.log_images(self.step, samples)
                    if last_val.get("psnr", -math.inf) > self.best_psnr:
                        self.best_psnr = last_val["psnr"]
                        self.save_checkpoint(best=True, metrics=last_val)
                if self.step % train.checkpoint_every == 0 or last:
                    self.save_checkpoint(metrics=last_val or None)
                self._barrier()
                if stop:
                    if self.dist.is_main:
                        logger.info(
                            "time limit reached at iteration %d: checkpoint written; continue "
                            "with --resume auto",
                            self.step,
                        )
                    break
        finally:
            log.close()
        if self.dist.is_main:
            elapsed = time.perf_counter() - started
            logger.info(
                "%d iterations in %.1f s (%.2f it/s)",
                self.step - start_step,
                elapsed,
                (self.step - start_step) / max(elapsed, 1e-9),
            )
        return last_val


def find_resume(options: RunOptions) -> Path | None:
    """The state file ``--resume auto|never|PATH`` names (``auto``: the run folder's, if any)."""
    if options.resume == "never":
        return None
    if options.resume == "auto":
        path = options.out_dir / STATE_FILE
        return path if path.is_file() else None
    path = Path(options.resume)
    if not path.is_file():
        raise CheckpointError(f"--resume {path}: no such file; pass auto or a {STATE_FILE} path")
    return path


def train(recipe: Recipe, options: RunOptions) -> dict[str, float]:
    """Run ``recipe`` (the library entry point behind ``superres train``)."""
    trainer = Trainer(recipe, options, resume_from=find_resume(options))
    try:
        return trainer.fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


__all__ = [
    "MEMORY_FORMATS",
    "Trainer",
    "fastest_memory_format",
    "find_resume",
    "loss_kwargs_for_run",
    "resolve_train_files",
    "train",
]
