"""Training recipes: YAML -> frozen, typed dataclasses.

A recipe holds hyperparameters only; system choices (device, precision, worker processes, output
folder, data root) are flags of ``superres train`` (see :class:`RunOptions`), so one YAML file
reproduces a paper on any machine. Rules:

* every key is known: a typo is a :class:`~superres.errors.ConfigError` that names the key, the
  section and the valid keys (with a close match when there is one);
* values are type-checked (``int`` where an int is expected, lists of the right element type);
* model sections are ``name`` plus the architecture's own constructor keywords (checked against
  the constructor's signature and annotations, so ``num_blok: 16`` and ``num_blocks: many`` fail
  at load time, not an hour later);
* loss terms are ``name`` plus the loss's keywords (checked the same way against
  :mod:`superres.losses`; ``loss_weight: 1e-2`` is the number YAML 1.1 would leave a string);
* ``--set section.key=value`` overrides any value (the value is parsed as YAML: ``1e-4``,
  ``[1, 2]``, ``true``) before validation.

The resolved recipe (after overrides) is what every checkpoint stores, as YAML text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from superres.data.degradations import DegradationConfig, nest_stage_keys
from superres.errors import ConfigError, UnsupportedScaleError, did_you_mean
from superres.registry import builder_hints
from superres.training.recipe_text import apply_overrides, brief, parse_yaml, read_recipe_text

#: ``1e-4``, ``-2E+3``: numbers in exponent form that YAML 1.1 leaves as strings.
_YAML11_EXPONENT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")

# --- sections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """A network: registry ``name`` and its constructor keywords (``scale`` is the recipe's)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig:
    """One loss term: :func:`superres.losses.build_loss` ``name`` and its keywords."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8


@dataclass(frozen=True)
class SchedulerConfig:
    """Learning-rate schedule, stepped once per iteration (see :mod:`superres.training.optim`)."""

    name: Literal["constant", "step", "multistep", "cosine"] = "constant"
    warmup_iters: int = 0
    step_size: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    eta_min: float = 0.0


@dataclass(frozen=True)
class SubimagesConfig:
    """Cut each training folder into overlapping squares on first use (BasicSR's DIV2K recipe:
    480-pixel squares every 240 pixels) and train on those; see :func:`~superres.data.prepare.
    prepared_subimages` for where they are kept and when they are cut again."""

    crop_size: int = 480
    step: int = 240
    thresh_size: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Training data: HR folders (relative paths resolve against the data root).

    ``batch_size`` is the global batch: with ``torchrun`` each of N processes takes
    ``batch_size / N``, so a recipe trains the same on one GPU or eight.

    ``pipeline``: ``"device"`` keeps the prepared images on the training device and cuts each
    batch there (:mod:`superres.data.device_pipeline`; the fast path, and the default);
    ``"loader"`` builds items in DataLoader workers (:mod:`superres.data.training`). Both draw
    the same items in the same order; their crops and flips come from different random streams.

    ``train_roots`` are catalog names (``t91``, ``div2k-train``) or folders; ``subimages``
    trains on overlapping squares of them, cut once into the cache (for 2K sets such as DIV2K,
    whose whole images make slow DataLoader items).

    ``degradation`` (:class:`~superres.data.degradations.DegradationConfig`, ``{}`` for
    Real-ESRGAN's defaults) synthesises each crop's LR (:mod:`superres.data.realworld`);
    ``sharpen_targets`` then trains towards the unsharp-masked crops, as Real-ESRGAN does.
    """

    train_roots: tuple[str, ...] = ("T91",)
    gt_size: int = 96
    batch_size: int = 16
    channels: Literal["rgb", "y"] = "rgb"
    hflip: bool = True
    rot90: bool = True
    small_images: Literal["pad", "skip"] = "pad"
    repeat: int = 1
    holdout_fraction: float = 0.0
    pipeline: Literal["device", "loader"] = "device"
    subimages: SubimagesConfig | None = None
    degradation: DegradationConfig | None = None
    sharpen_targets: bool = False


@dataclass(frozen=True)
class ValidationConfig:
    """Validation on a catalogued benchmark set (PSNR/SSIM on Y, border = scale, uint8 output)."""

    dataset: str | None = "set5"
    every: int = 1000
    max_images: int | None = None
    num_samples: int = 2


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation.

    ``mode``: ``"psnr"`` trains one network with ``losses`` (pixel/structural); ``"gan"`` also
    trains ``discriminator`` and adds the ``gan`` loss term (and usually a ``perceptual`` one),
    starting the generator from ``pretrained`` (a PSNR-stage checkpoint; relative paths resolve
    against the folder of runs, so ``srresnet_x4/weights_last.safetensors`` names the PSNR run).
    """

    mode: Literal["psnr", "gan"] = "psnr"
    total_iters: int = 1000
    losses: tuple[LossConfig, ...] = (LossConfig("l1"),)
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    optimizer_d: OptimizerConfig = OptimizerConfig()
    scheduler_d: SchedulerConfig = SchedulerConfig()
    pretrained: str | None = None
    ema_decay: float | None = None
    grad_clip: float | None = None
    d_init_iters: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000


@dataclass(frozen=True)
class InferenceConfig:
    """How the trained model is meant to be run; stored in its weights' metadata.

    ``backproject``: iterations of back-projection after upscaling (ESRGAN-Pro uses it).
    """

    backproject: int = 0


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe (one YAML file)."""

    name: str
    scale: int
    model: ModelConfig
    source: str = ""
    seed: int = 0
    discriminator: ModelConfig | None = None
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    validation: ValidationConfig = ValidationConfig()
    inference: InferenceConfig = InferenceConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the inverse of :func:`recipe_from_dict`), for YAML and checkpoints."""
        return _to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


@dataclass(frozen=True)
class RunOptions:
    """System choices of one run, kept out of the recipe (they do not change the result).

    ``time_limit``: seconds after which the run checkpoints and stops at the next logging step
    (a cluster job's wall-clock limit); ``--resume auto`` continues it exactly. ``compile``:
    run the networks through ``torch.compile`` (pays off on GPUs; on a CPU the convolutions
    dominate and it gained nothing in ``benchmarks/train_speed.py``). ``memory_format``: the
    networks' layout; ``auto`` is channels_last on CUDA and, on a CPU, whichever of the two a
    timed training step finds faster (a resumed run keeps its own). ``download``: let the losses
    download the pinned files they need (ImageNet trunks, LPIPS heads) when they are not here.
    """

    out_dir: Path
    data_root: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    num_workers: int = 2
    resume: Literal["auto", "never"] | Path = "never"
    progress: bool = True
    tensorboard: bool = True
    time_limit: float | None = None
    compile: bool = False
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    download: bool = False

    def __post_init__(self) -> None:
        if self.num_workers < 0:
            raise ConfigError(
                f"--workers must be 0 or more (num_workers={self.num_workers}); 0 loads the data "
                "in the training process"
            )
        limit = self.time_limit
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            raise ConfigError(
                f"--time-limit must be a positive number of seconds (time_limit={limit}); leave "
                "it out (None) to train to train.total_iters"
            )


# --- dict -> dataclass ---------------------------------------------------------------------------

#: Sections whose extra keys are the keywords of a registered builder.
_OPEN_SECTIONS = (ModelConfig, LossConfig)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, _OPEN_SECTIONS):
            return {"name": value.name, **{k: _to_plain(v) for k, v in value.kwargs.items()}}
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, base: Any = None) -> Any:
    """Check and convert ``value`` to ``tp``; ``where`` names it; ``base`` fills section gaps."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except _UnsupportedTypeError:
                raise  # the union cannot be checked as a whole either
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where}: got {brief(value)}; " + "; ".join(errors)
        )
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: got {brief(value)}; expected one of {choices}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, where, base)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {brief(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {brief(value)}")
        return tuple(
            _convert(v, a, f"{where}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (list, Sequence):  # checked item by item, like a tuple of any length
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {brief(value)}")
        items = [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {brief(value)}")
        return dict(value)
    if tp is float:
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads ``1e-4`` (no dot) as a string; every user means a number.
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {brief(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {brief(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {brief(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {brief(value)}")
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{where}: expected a path, got {brief(value)}")
        return Path(value)
    raise _UnsupportedTypeError(f"{where}: unsupported type {_type_name(tp)}")


class _UnsupportedTypeError(ConfigError):
    """An annotation :func:`_convert` cannot check (a builder keyword typed as a module, ...)."""


def _build(cls: type, data: Any, where: str, base: Any = None) -> Any:
    if isinstance(data, cls):
        return data
    if isinstance(data, str) and cls in _OPEN_SECTIONS:
        data = {"name": data}  # `losses: [l1]` is shorthand for `[{name: l1}]`
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {brief(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if cls in _OPEN_SECTIONS:
        if "name" not in data or not isinstance(data["name"], str):
            raise ConfigError(f"{where}: needs `name:` (a string), got {brief(dict(data))}")
        kwargs = {str(k): v for k, v in data.items() if k != "name"}
        return cls(name=data["name"], kwargs=kwargs)
    unknown = [k for k in data if k not in names]
    if unknown:
        key = str(unknown[0])
        raise ConfigError(
            f"{where or 'recipe'}: unknown key {brief(key)}.{did_you_mean(key, names)} "
            f"Valid keys: {', '.join(names)}"
        )
    values = {}
    for f in dataclasses.fields(cls):
        key_where = f"{where}.{f.name}" if where else f.name
        if f.name in data:  # a section's omitted keys keep its default's (stage 2's) values
            values[f.name] = _convert(data[f.name], hints[f.name], key_where, f.default)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where or 'recipe'}: missing required key {f.name!r}")
    try:
        return dataclasses.replace(base, **values) if isinstance(base, cls) else cls(**values)
    except ConfigError as exc:  # a section's own rules (DegradationStage's ranges)
        raise ConfigError(f"{where or 'recipe'}: {exc}") from None


def _typed_kwargs(
    builder: Any, kwargs: Mapping[str, Any], where: str, skip: tuple[str, ...]
) -> dict[str, Any]:
    """``kwargs`` checked against ``builder``'s signature, each converted to its annotation.

    Typed now (and `1e-2` made a number), not an hour into a run; an annotation that recipes
    cannot spell is left to the constructor.
    """
    params = inspect.signature(builder).parameters
    hints = builder_hints(builder)
    typed = dict(kwargs)
    for key in kwargs:
        if key in skip:
            raise ConfigError(f"{where}: {brief(key)} is set by the recipe, not here; remove it")
        if key not in params:
            valid = ", ".join(p for p in params if p not in skip)
            raise ConfigError(
                f"{where}: unknown argument {brief(key)}.{did_you_mean(key, params)} "
                f"Valid arguments: {valid}"
            )
        if key in hints:
            with contextlib.suppress(_UnsupportedTypeError):
                typed[key] = _convert(kwargs[key], hints[key], f"{where}.{key}")
    return typed


def _check_builders(recipe: Recipe) -> Recipe:
    """``recipe`` with the keywords of its models and losses checked against their builders and
    typed (a new frozen value; ``recipe`` is left as it is), once its other rules hold."""
    from superres.losses import LOSSES
    from superres.models import DISCRIMINATORS, MODELS, check_scale

    spec = MODELS.get(recipe.model.name)
    check_scale(spec.name, recipe.scale)
    model = _typed_kwargs(spec.builder, recipe.model.kwargs, "model", ("scale",))
    recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, kwargs=model))
    if recipe.discriminator is not None:
        builder = DISCRIMINATORS.get(recipe.discriminator.name)
        kwargs = _typed_kwargs(builder, recipe.discriminator.kwargs, "discriminator", ())
        discriminator = dataclasses.replace(recipe.discriminator, kwargs=kwargs)
        recipe = dataclasses.replace(recipe, discriminator=discriminator)
    if not recipe.train.losses:
        raise ConfigError(
            "train.losses is empty: give at least one loss term, e.g. `losses: [{name: l1}]`"
        )
    losses = tuple(
        dataclasses.replace(
            term,
            kwargs=_typed_kwargs(
                LOSSES.get(term.name), term.kwargs, f"train.losses[{i}] ({term.name})", ()
            ),
        )
        for i, term in enumerate(recipe.train.losses)
    )
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, losses=losses))
    _check_rules(recipe)
    return recipe


def _check_degradation(recipe: Recipe) -> None:
    """``data.degradation`` and ``data.sharpen_targets`` fit the rest of the recipe."""
    data = recipe.data
    if data.sharpen_targets and data.degradation is None:
        raise ConfigError(
            "data.sharpen_targets sharpens the targets of synthesised real-world LR; add a "
            "data.degradation section ({} for Real-ESRGAN's defaults) or remove it"
        )
    if data.sharpen_targets and data.gt_size < 26:
        raise ConfigError(f"data.sharpen_targets needs data.gt_size >= 26 px, got {data.gt_size}")
    if data.degradation is not None and data.channels != "rgb":
        raise ConfigError(
            "data.degradation synthesises colour LR (colour noise, JPEG chroma); use "
            "data.channels: rgb, or train a Y-channel model on bicubic LR"
        )


def _check_rules(recipe: Recipe) -> None:
    """The rules between sections (GAN mode and its parts, sizes, counts)."""
    names = [t.name for t in recipe.train.losses]
    if recipe.train.mode == "gan":
        if recipe.discriminator is None:
            raise ConfigError("train.mode is 'gan' but the recipe has no `discriminator:` section")
        if names.count("gan") != 1:
            raise ConfigError("train.mode 'gan' needs exactly one loss term with name: gan")
    elif "gan" in names or recipe.discriminator is not None:
        raise ConfigError(
            "train.mode is 'psnr' but the recipe has a gan loss or a discriminator; set "
            "train.mode: gan or remove them"
        )
    if recipe.data.gt_size % recipe.scale:
        raise ConfigError(
            f"data.gt_size {recipe.data.gt_size} is not a multiple of scale {recipe.scale}"
        )
    for key in ("total_iters", "log_every", "checkpoint_every"):
        if getattr(recipe.train, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {getattr(recipe.train, key)}")
    if recipe.validation.every < 1:
        raise ConfigError(f"validation.every must be at least 1, got {recipe.validation.every}")
    sub = recipe.data.subimages
    if sub is not None:
        if sub.crop_size < recipe.data.gt_size or sub.step < 1 or sub.thresh_size < 0:
            raise ConfigError(
                f"data.subimages: crop_size {sub.crop_size} must be at least data.gt_size "
                f"{recipe.data.gt_size}, step {sub.step} at least 1, thresh_size at least 0"
            )
        if recipe.data.holdout_fraction > 0:
            raise ConfigError(
                "data.subimages with data.holdout_fraction would hold out squares of the "
                "images it trains on; validate on validation.dataset instead"
            )
    _check_degradation(recipe)
    if recipe.data.batch_size < 1 or recipe.data.repeat < 1:
        raise ConfigError("data.batch_size and data.repeat must be at least 1")
    if recipe.train.ema_decay is not None and not 0.0 < recipe.train.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in (0, 1), got {recipe.train.ema_decay}")


#: What a resumed run may change: how long it trains and how often it logs, checkpoints and
#: validates. Everything else would make the checkpoint's optimizer state and data position
#: belong to another experiment.
RESUMABLE_KEYS: frozenset[str] = frozenset(
    {
        "train.total_iters",
        "train.log_every",
        "train.checkpoint_every",
        "validation.every",
        "validation.max_images",
        "validation.num_samples",
        # The same items in the same order either way; only the crops' random stream differs
        # (a run may switch to the faster pipeline; the change is logged).
        "data.pipeline",
    }
)


def recipe_from_checkpoint(text: str, *, source: str) -> Recipe:
    """The recipe a checkpoint stored (YAML), read as the version that wrote it meant it.

    Keys added since keep the behaviour of before them: a recipe without ``data.pipeline`` was
    trained with DataLoader batches (``loader``); flat stage keys (``noise_range2``) are nested.

    Raises:
        ConfigError: not a recipe this version can read.
        yaml.YAMLError: not YAML.
    """
    data = yaml.safe_load(text)
    if isinstance(data, dict) and isinstance(section := data.get("data"), dict):
        section.setdefault("pipeline", "loader")
        section["degradation"] = nest_stage_keys(section.get("degradation"))  # once flat
    return recipe_from_dict(data, source=source)


def recipe_changes(old: Recipe, new: Recipe) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` for every value that differs between two recipes
    (a key only one of them has counts as ``None`` in the other)."""
    changes: dict[str, tuple[Any, Any]] = {}

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in dict.fromkeys([*a, *b]):
                walk(a.get(k), b.get(k), f"{key}.{k}" if key else str(k))
        elif a != b:
            changes[key] = (a, b)

    walk(old.to_dict(), new.to_dict(), "")
    return changes


def recipe_from_dict(data: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
    """Validate plain data (parsed YAML) into a :class:`Recipe`.

    Raises:
        ConfigError: unknown or missing keys, wrong types, unknown models/losses or arguments.
    """
    try:
        recipe = _check_builders(_build(Recipe, data, ""))
    except (ConfigError, UnsupportedScaleError) as exc:  # a scale the model does not have
        raise ConfigError(f"{source}: {exc}") from None
    except KeyError as exc:  # unknown model/loss names: the registries' errors suggest matches
        raise ConfigError(f"{source}: {exc}") from None
    return recipe


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML file (``yaml.safe_load``), apply ``--set`` overrides and validate.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, not YAML, or not a valid
            recipe (one line, whatever the file holds).
    """
    path = Path(path)
    data = parse_yaml(read_recipe_text(path), what=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return recipe_from_dict(apply_overrides(data, overrides), source=str(path))


__all__ = [
    "RESUMABLE_KEYS",
    "DataConfig",
    "InferenceConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "RunOptions",
    "SchedulerConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "load_recipe",
    "recipe_changes",
    "recipe_from_checkpoint",
    "recipe_from_dict",
]
