"""The networks a run trains: the generator (optionally warm-started from a PSNR-stage run), the
discriminator of a GAN recipe, and the generator's moving average (EMA)."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from superres.errors import ConfigError
from superres.models import DISCRIMINATORS, create_model, load_weights
from superres.models.descriptor import describe_network
from superres.training.config import Recipe, TrainConfig
from superres.training.ema import ModelEMA

logger = logging.getLogger(__name__)


def load_pretrained(net_g: nn.Module, spec: str, *, recipe: Recipe, runs_dir: Path) -> None:
    """Load ``train.pretrained`` (``spec``; a relative path that is not found from the working
    folder resolves against ``runs_dir``, the folder of runs) into ``net_g``.

    Raises:
        ConfigError: no such file, another architecture, or other hyperparameters.
    """
    path = Path(spec).expanduser()
    if not path.is_absolute() and not path.exists():
        path = runs_dir / path
    if not path.is_file():
        raise ConfigError(
            f"train.pretrained: {spec!r} not found (also looked for {path}); train the PSNR "
            "stage first (its run folder holds weights_last.safetensors) or fix the path"
        )
    source = load_weights(path)
    found = describe_network(source).architecture
    if found != describe_network(net_g).architecture:
        raise ConfigError(
            f"train.pretrained {path} holds a {found} model, but the "
            f"recipe trains {recipe.model.name}"
        )
    try:
        net_g.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        raise ConfigError(
            f"train.pretrained {path} does not fit the recipe's model ({exc}); its "
            "hyperparameters must match the model section"
        ) from None
    logger.info("generator initialised from %s", path)


def build_generator(recipe: Recipe, *, warm_start: bool, runs_dir: Path) -> nn.Module:
    """The recipe's model, loaded from ``train.pretrained`` when it names one and
    ``warm_start`` (a resumed run takes its weights from its checkpoint instead)."""
    net_g = create_model(recipe.model.name, scale=recipe.scale, **recipe.model.kwargs)
    if recipe.train.pretrained is not None and warm_start:
        load_pretrained(net_g, recipe.train.pretrained, recipe=recipe, runs_dir=runs_dir)
    return net_g


def build_discriminator(recipe: Recipe) -> nn.Module | None:
    """The recipe's discriminator, or ``None`` for a recipe without one."""
    if recipe.discriminator is None:
        return None
    builder = DISCRIMINATORS.get(recipe.discriminator.name)
    return builder(**recipe.discriminator.kwargs)


def build_ema(net_g: nn.Module, train: TrainConfig) -> ModelEMA | None:
    """The moving average of the bare generator ``net_g`` when ``train.ema_decay`` asks for one.

    From pretrained weights the average starts at them, at the full decay: the warm-up (meant to
    forget random initial weights) would let the first, largest steps of a fresh optimizer pull
    it away from a model that is already good.
    """
    if train.ema_decay is None:
        return None
    return ModelEMA(net_g, decay=train.ema_decay, warmup=train.pretrained is None)


__all__ = ["build_discriminator", "build_ema", "build_generator", "load_pretrained"]
