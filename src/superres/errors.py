"""Named exceptions for every failure a user can cause.

Each message says what was received, what was expected and how to fix it. The CLI turns any
:class:`SuperresError` into a one-line message on stderr and a non-zero exit code; library users can
catch the specific subclass. Several subclasses also derive from the matching built-in exception
(``ValueError``, ``FileNotFoundError``, ``KeyError``) so generic handlers keep working.

This module imports nothing of ours.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SuperresError(Exception):
    """Base class of every error superres raises on purpose."""


# --- images and files -----------------------------------------------------------------------------


class ImageFileError(SuperresError, OSError):
    """An image file could not be read or written; ``path`` and ``reason`` say which and why."""

    #: What was being done to the file, in the message ("read" or "write").
    action = "use"

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:  # OSError would otherwise format its own errno-style message
        return f"cannot {self.action} image {self.path!r}: {self.reason}"


class ImageReadError(ImageFileError):
    """A file could not be read as an image (missing, empty, truncated, corrupt, not an image)."""

    action = "read"


class ImageTooLargeError(ImageReadError):
    """The image exceeds the pixel limit (a guard against decompression bombs)."""


class ImageWriteError(ImageFileError):
    """An image could not be written (bad extension, missing folder, unsupported mode/depth)."""

    action = "write"


# --- array and tensor inputs ----------------------------------------------------------------------


class InvalidImageError(SuperresError, ValueError):
    """An in-memory image has the wrong shape, dtype, range or size for the operation."""


class ImageTooSmallError(InvalidImageError):
    """The image is smaller than the operation needs (e.g. MS-SSIM's five scales)."""


# --- registries: models, datasets -----------------------------------------------------------------


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choices, or ``""`` when none is close."""
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=3, cutoff=0.5)
    by_lower = {c.lower(): c for c in choices}
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


class UnknownNameError(SuperresError, KeyError):
    """A name looked up in one of our registries does not exist."""

    kind = "name"

    def __init__(self, name: str, choices: Iterable[str]) -> None:
        self.name = name
        self.choices = sorted(choices)
        message = (
            f"unknown {self.kind} {name!r}.{did_you_mean(name, self.choices)} "
            f"Known {self.kind}s: {', '.join(self.choices) or '(none)'}."
        )
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class UnknownModelError(UnknownNameError):
    """The model name is not registered (see ``superres.list_models()``)."""

    kind = "model"


class UnknownDatasetError(UnknownNameError):
    """The dataset name is not in the catalog (see ``superres.data.list_datasets()``)."""

    kind = "dataset"


class UnknownWeightsError(UnknownModelError):
    """The name is not in the pretrained-weights catalog (see ``superres.models.weights``)."""

    kind = "pretrained model"


class UnknownAssetError(UnknownNameError):
    """The name is not in the asset catalog (see ``superres assets``)."""

    kind = "asset"


class AssetNotFoundError(SuperresError, FileNotFoundError):
    """A pinned file the toolkit needs (weights, metric parameters) is not here.

    The one error for every asset of :mod:`superres.assets`: its message names the file, where it
    was looked for and the command that gets it.
    """

    def __str__(self) -> str:  # FileNotFoundError would otherwise format an errno message
        return str(self.args[0])


class InvalidAssetError(SuperresError, ValueError):
    """An asset file was found but does not hold what it should (wrong keys, shapes, format)."""


class UnsupportedScaleError(SuperresError, ValueError):
    """A model or dataset was asked for a scale it does not support."""


class DatasetNotFoundError(SuperresError, FileNotFoundError):
    """A known dataset is not present under the data root."""

    def __str__(self) -> str:
        return str(self.args[0])


class DatasetModifiedError(SuperresError, ValueError):
    """A benchmark set's HR files differ from its catalog entry (count or names)."""


class IncompatibleWeightsError(SuperresError, ValueError):
    """A weight file does not fit the requested architecture, or needs unsafe unpickling."""


class InvalidWeightsError(IncompatibleWeightsError):
    """A weights file is refused before anything is built: hyperparameters beyond their limits,
    tensors declaring more bytes than the file holds, non-float or non-finite tensors."""


class WeightsReadError(SuperresError, OSError):
    """A weights file could not be read: empty, truncated, corrupt or not a checkpoint at all."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read weights file {self.path!r}: {reason}")

    def __str__(self) -> str:  # OSError would otherwise format its own errno-style message
        return f"cannot read weights file {self.path!r}: {self.reason}"


class WeightsNotFoundError(WeightsReadError, FileNotFoundError):
    """A weights file does not exist (or is a folder)."""


class MissingWeightsError(SuperresError, ValueError):
    """A learned architecture was asked for without weights: it would upscale with random ones."""


class OutputPathError(SuperresError, ValueError):
    """An output path cannot be used: a file where a folder must be, an unknown extension, two
    inputs writing one output, an output overwriting an input or inside an input folder."""


class ConfigError(SuperresError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type, bad value)."""


def check_positive(name: str, value: object) -> int:
    """``value`` if it is a positive ``int`` (not a bool); else a :class:`ConfigError` naming
    ``name``. The one check of a count (blocks, channels, batch size, repeats) everywhere."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_choice(value: str, choices: Iterable[str], what: str, owner: str) -> str:
    """``value`` if it is one of ``choices``; else a :class:`ConfigError` listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{owner}: {what} must be one of {', '.join(map(repr, choices))}; got {value!r}."
        )
    return value


class InvalidNetworkError(SuperresError, ValueError):
    """An object given as an SR network does not keep the contract (a module with an integer
    ``scale``, positive ``in_channels`` and ``size_multiple``)."""
