"""The training loop: PSNR-oriented and GAN stages, resumable, single process or DDP.

Read it top to bottom: :class:`Trainer` sets up the process group, device and precision (once,
here), the data, the networks, the losses and the optimizers, one step each (built by
:mod:`~superres.training.placement`, :mod:`~superres.training.run_data`,
:mod:`~superres.training.networks` and :mod:`~superres.training.objectives`);
:meth:`Trainer.fit` runs iterations, logs, validates and checkpoints
(:mod:`~superres.training.checkpoint`).

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
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.optimizer import ParamsT

from superres.errors import SuperresError
from superres.evaluation.protocol import (
    prepare_network,
    score_output,
    set_mean,
    super_resolve,
)
from superres.io.files import atomic_write_text, check_output_folder
from superres.runtime import resolve_precision, retain_freed_memory
from superres.training.checkpoint import (
    RECIPE_FILE,
    STATE_FILE,
    WEIGHTS_BEST,
    WEIGHTS_LAST,
    check_resumed_recipe,
    describe_last_good,
    find_resume,
    first_non_finite,
    load_state,
    open_run_folder,
    rng_state,
    save_run_weights,
    save_state,
    set_rng_state,
    state_bytes,
    write_failed,
)
from superres.training.config import OptimizerConfig, Recipe, RunOptions, SchedulerConfig
from superres.training.ema import unwrap_model
from superres.training.logging import NullLogger, TrainingLogger
from superres.training.networks import build_discriminator, build_ema, build_generator
from superres.training.objectives import build_losses, build_optimization, loss_kwargs_for_run
from superres.training.optim import clip_gradients
from superres.training.placement import (
    MEMORY_FORMATS,
    choose_memory_format,
    collective_device,
    fastest_memory_format,
    grad_scaler,
    place_network,
    start_process_group,
)
from superres.training.run_data import build_training_data, resolve_train_files
from superres.training.run_files import RunOutputError, TextLog

logger = logging.getLogger(__name__)

#: With several processes the time limit is agreed on (a broadcast and a host sync) this often.
_TIME_CHECK_EVERY = 10


class Trainer:
    """One training run of ``recipe`` with the system choices of ``options``."""

    def __init__(
        self, recipe: Recipe, options: RunOptions, *, resume_from: Path | None = None
    ) -> None:
        self.recipe = recipe
        self.options = options
        train = recipe.train

        # The edge: process group, device and precision, decided once, here.
        self.dist, self.device = start_process_group(options.device)
        if self.device.type == "cpu":
            retain_freed_memory()
        self.amp_dtype = resolve_precision(options.precision, self.device, training=True)
        self.scaler = grad_scaler(self.device, self.amp_dtype)
        self.out_dir = open_run_folder(options.out_dir, options.resume, is_main=self.dist.is_main)
        # A checkpoint of another experiment is refused before the dataset scan.
        state = load_state(resume_from) if resume_from is not None else None
        if resume_from is not None and state is not None:
            check_resumed_recipe(resume_from, state.get("recipe"), recipe)

        # Data: files, the seeded hold-out split, the dataset, its resumable sampler, the batches.
        self.data = build_training_data(recipe, options, env=self.dist, device=self.device)

        # Networks: identical initial weights on every rank (seeded), then per-rank RNG streams.
        torch.manual_seed(recipe.seed)
        warm_start = resume_from is None  # a resumed run takes its weights from its state
        net_g = build_generator(recipe, warm_start=warm_start, runs_dir=self.out_dir.parent)
        net_d = build_discriminator(recipe)
        torch.manual_seed(recipe.seed + self.dist.rank)
        self.memory_format = self._choose_memory_format(net_g, state)
        self.net_g = self._place(net_g)
        self.net_d = self._place(net_d) if net_d is not None else None
        self.ema = build_ema(unwrap_model(self.net_g), train)

        # Losses: `gan` is special (it needs the discriminator); every other term is f(sr, gt).
        losses = build_losses(
            train.losses,
            data_root=self.data.root,
            scale=recipe.scale,
            download=options.download,
            device=self.device,
        )
        self.pixel_terms, self.gan_loss = losses.pixel_terms, losses.gan_loss

        # Optimizers and per-iteration schedules.
        params_g = unwrap_model(self.net_g).parameters()
        self.opt_g, self.sched_g = self._optimization(params_g, train.optimizer, train.scheduler)
        self.opt_d = self.sched_d = None
        if self.net_d is not None:
            params_d = self.net_d.parameters()
            self.opt_d, self.sched_d = self._optimization(
                params_d, train.optimizer_d, train.scheduler_d
            )

        # Where the run stands (a resume overwrites all of it).
        self.step = 0
        self.epoch = 0
        self.position = 0  # indices of this rank already consumed in the current epoch
        self.best_psnr = -math.inf
        self.saved_step: int | None = None  # the iteration of the training state on disk
        # Sums of the losses since the last log line: logs show window means, not one noisy step.
        self.window: dict[str, torch.Tensor] = {}
        self.window_counts: dict[str, int] = {}
        if resume_from is not None and state is not None:
            self._resume(resume_from, state)

    # --- setup helpers ------------------------------------------------------------------------

    def _choose_memory_format(self, net_g: nn.Module, state: dict[str, Any] | None) -> str:
        """See :func:`~superres.training.placement.choose_memory_format`; the probe is one
        training step of this rank's batch of LR patches."""
        channels = 1 if self.recipe.data.channels == "y" else 3
        size = self.recipe.data.gt_size // self.recipe.scale
        return choose_memory_format(
            self.options.memory_format,
            stored=state.get("memory_format") if state is not None else None,
            model=net_g,
            input_shape=(self.data.local_batch, channels, size, size),
            device=self.device,
            amp_dtype=self.amp_dtype,
            env=self.dist,
        )

    def _place(self, model: nn.Module) -> nn.Module:
        return place_network(
            model,
            device=self.device,
            memory_format=self.memory_format,
            env=self.dist,
            compile=self.options.compile,
        )

    def _optimization(
        self, params: ParamsT, optimizer: OptimizerConfig, scheduler: SchedulerConfig
    ) -> tuple[torch.optim.Optimizer, LRScheduler]:
        fused = self.device.type in ("cuda", "cpu")  # where torch has a fused Adam
        return build_optimization(
            params, optimizer, scheduler, total_iters=self.recipe.train.total_iters, fused=fused
        )

    # --- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs (see :mod:`superres.training.checkpoint`)."""
        self.data.sampler.load_state_dict({"epoch": self.epoch, "position": self.position})
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
            "sampler": self.data.sampler.state_dict(),
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
        """Continue from what :meth:`state_dict` stored at ``path`` (its recipe checked)."""
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
        self.saved_step = self.step
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.best_psnr = float(state["best_psnr"])
        self.window = {k: v.to(self.device) for k, v in state["window"].items()}
        self.window_counts = {k: int(v) for k, v in state["window_counts"].items()}
        set_rng_state(state["rng"])
        if self.dist.world_size > 1:  # per-rank streams continue per rank
            torch.manual_seed(self.recipe.seed + self.dist.rank + 1_000_003 * self.step)
        logger.info("resumed %s at iteration %d", path, self.step)

    def _model_for_export(self) -> nn.Module:
        return self.ema.module if self.ema is not None else unwrap_model(self.net_g)

    def save_checkpoint(
        self, *, best: bool = False, metrics: dict[str, float] | None = None
    ) -> None:
        """Rank 0: weights (safetensors with the recipe) then the full training state.

        Nothing non-finite is written over a good checkpoint, and a failed write leaves the
        previous files as they were (atomic writes).

        Raises:
            SuperresError: a weight or state tensor is NaN or infinite (the run diverged).
            CheckpointError: the folder cannot be written (full, read-only, no permission).
        """
        if not self.dist.is_main:
            return
        target = self.out_dir / (WEIGHTS_BEST if best else WEIGHTS_LAST)
        model = self._model_for_export()
        state = None if best else self.state_dict()
        last_good = describe_last_good(self.out_dir, self.saved_step)
        weights = model.state_dict()
        bad = first_non_finite(weights) or first_non_finite(state)
        if bad is not None:
            raise SuperresError(
                f"training diverged at iteration {self.step}: {bad} is not finite, so no "
                f"checkpoint was written; {last_good}. Lower train.optimizer.lr, set "
                "train.grad_clip, or use --precision fp32"
            )
        try:
            save_run_weights(model, target, recipe=self.recipe, step=self.step, metrics=metrics)
            if state is not None:
                save_state(self.out_dir / STATE_FILE, state)
                self.saved_step = self.step
        except OSError as exc:
            needed = state_bytes(state) + state_bytes(weights)
            raise write_failed(self.out_dir, exc, needed=needed, last_good=last_good) from None

    # --- the loop -----------------------------------------------------------------------------

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches forever, epoch after epoch, starting at the resumed position.

        Both pipelines yield the full batches of this rank's share of each epoch, in the
        sampler's order, from ``(epoch, position)`` on; a last partial batch is dropped.
        """
        while True:
            data = self.data
            if data.device_batches is not None:
                share = data.sampler.num_samples
                while self.position + data.local_batch <= share:
                    batch = data.device_batches.batch(self.epoch, self.position)
                    self.position += data.local_batch
                    yield data.finish(batch, self.epoch, self.position)
            else:
                assert data.loader is not None
                data.sampler.load_state_dict({"epoch": self.epoch, "position": self.position})
                data.dataset.set_epoch(self.epoch)
                for batch in data.loader:
                    self.position += data.local_batch
                    yield data.finish(batch, self.epoch, self.position)
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
        if train_g:
            values.update(self._generator_step(sr, gt))
        if net_d is not None and self.opt_d is not None:
            values.update(self._discriminator_step(net_d, self.opt_d, sr, gt))
        self.scaler.update()

        if train_g:
            self.sched_g.step()
            if self.ema is not None:
                self.ema.update(self.net_g)
        if self.sched_d is not None:
            self.sched_d.step()
        return values

    def _generator_step(self, sr: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Update the generator on every pixel term and, in a GAN, the adversarial term (the
        discriminator frozen); returns the detached terms and ``loss_total``."""
        values: dict[str, torch.Tensor] = {}
        sr32 = sr.float()
        total = torch.zeros((), device=self.device)
        for key, term in self.pixel_terms:
            value = term(sr32, gt)
            values[key] = value.detach()
            total = total + value
        if self.net_d is not None:
            raw_d = unwrap_model(self.net_d)  # frozen: plain module, no DDP collective here
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
        return values

    def _discriminator_step(
        self, net_d: nn.Module, opt_d: torch.optim.Optimizer, sr: torch.Tensor, gt: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Update the discriminator on real ``gt`` vs generated ``sr``; returns ``loss_d`` and
        the mean logits."""
        for p in net_d.parameters():
            p.requires_grad_(True)
        # Real and generated images in one forward pass: one DDP collective per step.
        with self._autocast():
            logits = net_d(torch.cat([gt, sr.detach()], dim=0)).float()
        real_logits, fake_logits = logits.split(gt.shape[0], dim=0)
        loss_d = self.gan_loss.discriminator_loss(real_logits, fake_logits)
        values = {
            "loss_d": loss_d.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }
        self._optimize(loss_d, net_d, opt_d)
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
        for pair in self.data.val_pairs:
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
        flag = torch.tensor([float(over)], device=collective_device(self.device))
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def _log(self) -> TrainingLogger | NullLogger:
        """Rank 0 writes the logs; the other ranks log nothing."""
        if not self.dist.is_main:
            return NullLogger()
        return TrainingLogger(
            self.out_dir,
            total_iters=self.recipe.train.total_iters,
            start_iter=self.step,
            tensorboard=self.options.tensorboard,
            progress=self.options.progress,
        )

    def _accumulate(self, values: dict[str, torch.Tensor]) -> None:
        """Add one step's losses to the window of the next log line."""
        for key, value in values.items():
            previous = self.window.get(key)
            value = value.detach().float()
            self.window[key] = value if previous is None else previous + value
            self.window_counts[key] = self.window_counts.get(key, 0) + 1

    def _window_means(self) -> dict[str, float]:
        """The window's mean losses over every rank; the window starts again.

        Raises:
            SuperresError: a loss is not finite (the run diverged).
        """
        reduced = self._reduce({k: v / self.window_counts[k] for k, v in self.window.items()})
        self.window, self.window_counts = {}, {}
        if not all(math.isfinite(v) for v in reduced.values()):
            raise SuperresError(
                f"training diverged at iteration {self.step}: losses {reduced}; "
                f"{describe_last_good(self.out_dir, self.saved_step)}. Lower "
                "train.optimizer.lr, set train.grad_clip, or use --precision fp32"
            )
        return reduced

    def _validate_and_log(self, log: TrainingLogger | NullLogger) -> dict[str, float]:
        """Validate (rank 0), log the scores and samples, keep the best weights."""
        scores, samples = self.validate()
        log.log_val(self.step, scores)
        log.log_images(self.step, samples)
        if scores.get("psnr", -math.inf) > self.best_psnr:
            self.best_psnr = scores["psnr"]
            self.save_checkpoint(best=True, metrics=scores)
        return scores

    def fit(self) -> dict[str, float]:
        """Train to ``train.total_iters``; returns the last validation scores (rank 0)."""
        train = self.recipe.train
        log = self._log()
        last_val: dict[str, float] = {}
        started = time.perf_counter()
        start_step = self.step
        batches = self.batches()
        try:
            while self.step < train.total_iters:
                values = self.train_step(next(batches))
                self.step += 1
                self._accumulate(values)
                stop = self._out_of_time(started)
                last = stop or self.step == train.total_iters
                if self.step % train.log_every == 0 or last:
                    lr = self.opt_g.param_groups[0]["lr"]
                    log.log_train(self.step, self._window_means(), lr)
                if self.data.val_pairs and (self.step % self.recipe.validation.every == 0 or last):
                    last_val = self._validate_and_log(log)
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
        except RunOutputError as exc:
            last_good = describe_last_good(self.out_dir, self.saved_step)
            what = str(exc.path.relative_to(self.out_dir))
            raise write_failed(
                self.out_dir, exc.error, needed=None, last_good=last_good, what=what
            ) from None
        finally:
            log.close()
        if self.dist.is_main:
            elapsed = time.perf_counter() - started
            done = self.step - start_step
            logger.info(
                "%d iterations in %.1f s (%.2f it/s)", done, elapsed, done / max(elapsed, 1e-9)
            )
        return last_val


def train(recipe: Recipe, options: RunOptions) -> dict[str, float]:
    """Run ``recipe`` (the library entry point behind ``superres train``).

    The run folder gets the resolved recipe (``recipe.yaml``, this run's: a resume may change
    its length) and a text log of everything logged from the start (``train.log``); a start
    that fails leaves no empty folder."""
    check_output_folder(options.out_dir, "--out")  # before the training set is read
    text_log = TextLog()
    run = f"{recipe.name}: {recipe.model.name} x{recipe.scale} for {recipe.train.total_iters}"
    logger.info("%s iterations into %s; reading the training set", run, options.out_dir)
    created = not options.out_dir.exists()
    try:
        trainer = Trainer(recipe, options, resume_from=find_resume(options))
        if trainer.dist.is_main:
            atomic_write_text(trainer.out_dir / RECIPE_FILE, recipe.to_yaml())
            text_log.open(trainer.out_dir)
        else:
            text_log.close()  # rank 0 keeps the log
    except BaseException:
        text_log.close()
        if created:
            with contextlib.suppress(OSError):  # only an empty folder: nothing is lost
                options.out_dir.rmdir()
        raise
    try:
        return trainer.fit()
    finally:
        text_log.close()
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
