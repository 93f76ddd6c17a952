"""``superres train``: one recipe, resumable; under torchrun, one process per GPU."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from superres.cli.common import CommandText, add_data_root, add_device, add_download
from superres.runtime import PRECISIONS
from superres.training.config import RunOptions, load_recipe
from superres.training.trainer import MEMORY_FORMATS, train

logger = logging.getLogger("superres")


TEXT = CommandText(
    help="train a model from a recipe YAML (resumable; torchrun for several GPUs)",
    description="""Train from one recipe (configs/*.yaml). Launch with `torchrun --nproc_per_node N
    -m superres train ...` for DDP (data.batch_size is the global batch).""",
)


def add_arguments(tr: argparse.ArgumentParser) -> None:
    """The recipe and its overrides, the run folder, then how the run computes."""
    tr.add_argument("config", type=Path, help="recipe YAML, e.g. configs/srresnet_x4.yaml")
    tr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.total_iters=2000 (repeatable)",
    )
    tr.add_argument(
        "--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)"
    )
    tr.add_argument(
        "--resume",
        default=RunOptions.resume,
        help="auto: continue the run folder's last checkpoint if there is one; a state file "
        "path; never (default): refuse to touch a folder that holds a run. A resumed run may "
        "change train.total_iters and the log/checkpoint/validation cadence, nothing else",
    )
    _add_system_options(tr)
    add_data_root(tr, "folder holding T91/, BSD200/, Set5/ ... (default: $SUPERRES_DATA)")
    tr.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    add_download(tr)
    tr.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="checkpoint and stop after this many seconds (continue later with --resume auto)",
    )
    add_device(tr)


def _add_system_options(tr: argparse.ArgumentParser) -> None:
    """How the run computes (kept out of the recipe: they do not change the result)."""
    tr.add_argument(
        "--precision",
        default=RunOptions.precision,
        choices=PRECISIONS,
        help="autocast: auto = bf16 (or fp16) on GPUs, bf16 on CPUs with native bf16, else fp32",
    )
    tr.add_argument(
        "--workers",
        type=int,
        default=RunOptions.num_workers,
        help="data loader processes per rank (with data.pipeline: loader)",
    )
    tr.add_argument(
        "--memory-format",
        default=RunOptions.memory_format,
        choices=("auto", *MEMORY_FORMATS),
        help="the networks' layout (auto: channels_last on CUDA, the faster one measured on a CPU)",
    )
    tr.add_argument(
        "--compile",
        action="store_true",
        help="run the networks through torch.compile (for GPUs; no gain measured on CPUs)",
    )


def run(args: argparse.Namespace) -> int:
    """Train; the run options are checked by :class:`RunOptions` before any work."""
    recipe = load_recipe(args.config, args.overrides)
    resume = args.resume if args.resume in ("auto", "never") else Path(args.resume)
    options = RunOptions(
        out_dir=args.out if args.out is not None else Path("runs") / recipe.name,
        data_root=args.data_root,
        device=args.device,
        precision=args.precision,
        num_workers=args.workers,
        resume=resume,
        progress=not args.quiet,
        tensorboard=not args.no_tensorboard,
        time_limit=args.time_limit,
        compile=args.compile,
        memory_format=args.memory_format,
        download=args.download,
    )
    scores = train(recipe, options)
    if scores:
        logger.info("final validation: %s", ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return 0
