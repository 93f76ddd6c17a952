"""torchvision's ImageNet checkpoints that the feature trunks load: one catalog.

The perceptual losses (:mod:`superres.losses.perceptual`) and LPIPS
(:mod:`superres.metrics.lpips`) name their trunks differently (``vgg19``/``squeezenet1_1`` and
``alex``/``vgg``/``squeeze``) but download the same files; both take their entries from
:data:`IMAGENET_CHECKPOINTS`, so a URL or hash is written once.

torchvision names each file by the first hex digits of its sha256 (what ``torch.hub`` checks);
``sha256`` holds the full hash where we have verified the file, and is ``None`` where only the
prefix is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["IMAGENET_CHECKPOINTS", "TorchvisionCheckpoint"]


@dataclass(frozen=True)
class TorchvisionCheckpoint:
    """A torchvision ImageNet checkpoint.

    Attributes:
        url: the download URL; its file name ends in the first hex digits of the sha256.
        size: the file's size, for messages.
        summary: what the file is.
        sha256: the full sha256 where verified, else ``None`` (the name's prefix is checked).
    """

    url: str
    size: str
    summary: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        """The hash prefix in the file name, what ``torch.hub`` checks (``check_hash=True``)."""
        match = re.search(r"-([0-9a-f]{6,})\.", self.filename)
        if match is None:
            raise ValueError(f"{self.filename!r} does not end in -<sha256 prefix>.<ext>")
        return match.group(1)


#: The checkpoints by torchvision's model name.
IMAGENET_CHECKPOINTS: dict[str, TorchvisionCheckpoint] = {
    "alexnet": TorchvisionCheckpoint(
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        size="233 MiB",
        summary="torchvision AlexNet (IMAGENET1K_V1)",
    ),
    "vgg16": TorchvisionCheckpoint(
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        size="528 MiB",
        summary="torchvision VGG16 (IMAGENET1K_V1, no batch norm)",
    ),
    "vgg19": TorchvisionCheckpoint(
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        size="548 MiB",
        summary="torchvision VGG19 (IMAGENET1K_V1, no batch norm)",
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    ),
    "squeezenet1_1": TorchvisionCheckpoint(
        url="https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        size="4.7 MiB",
        summary="torchvision SqueezeNet 1.1 (IMAGENET1K_V1)",
        sha256="b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
    ),
}
