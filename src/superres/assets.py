"""Every pinned file superres uses, in one catalog, and the one way to get each.

An :class:`Asset` is a file the toolkit needs but does not compute: the zoo's weights (shipped in
the package), torchvision's ImageNet trunks (perceptual losses, LPIPS), the LPIPS linear heads, the
NIQE pristine model and Ma's trained forests. Each record names the file, where it is published,
its sha256 and size, its licence and what needs it; :data:`ASSETS` holds them all, and
``superres assets`` lists them with where each one is.

:func:`asset_path` is the one resolver. For an asset it looks, in this order, at

1. the copy shipped inside the package (the zoo's weights);
2. the data root (``data_root=``, else ``SUPERRES_DATA``, else ``<user cache>/data``), at the
   asset's ``data_paths`` (``niqe/niqe_pris_params.npz``, ``weights/lpips/v0.1/alex.pth``, ...);
3. superres's download cache, ``<cache>/hub/<filename>`` (``SUPERRES_CACHE`` moves it);
4. for torchvision's checkpoints, torch's own hub cache (``$TORCH_HOME/hub/checkpoints``), where a
   torchvision user already has them;

and checks the sha256 of the file it finds (once per file and modification time in a process). It
downloads only when the caller allows it (``download=True``: ``superres assets get NAME``, or a
command's ``--download``) and the asset has a pinned sha256, through
:func:`superres.io.hub.fetch` (streamed, verified, renamed into place atomically;
``SUPERRES_OFFLINE=1`` still refuses). Otherwise it raises
:class:`~superres.errors.AssetNotFoundError`, whose message names the file, every place it looked
and the one command that gets it. A file found with another sha256 raises
:class:`~superres.io.hub.ChecksumMismatchError` naming it: it is never used, never replaced.

A path the user gives explicitly (``--lpips-trunk FILE``, ``weights=FILE``) is used as it is,
without a hash check, so a re-saved or converted copy works.

This module imports :mod:`superres.errors`, :mod:`superres.registry` and :mod:`superres.io` only.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superres.errors import AssetNotFoundError, UnknownAssetError
from superres.io.files import resolve_data_root
from superres.io.hub import ChecksumMismatchError, default_cache_dir, fetch, sha256_file
from superres.registry import Registry

__all__ = [
    "ASSETS",
    "PACKAGE_DIR",
    "Asset",
    "AssetState",
    "asset_path",
    "asset_state",
    "describe_size",
    "find_asset",
    "get_asset",
    "list_assets",
    "places",
    "register_asset",
]

#: The installed package folder; ``Asset.packaged`` paths are relative to it.
PACKAGE_DIR = Path(__file__).resolve().parent

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]*")


@dataclass(frozen=True, kw_only=True)
class Asset:
    """One pinned file.

    Attributes:
        name: catalog name, ``kind/what`` in lower case (``"lpips/v0.1/alex"``).
        filename: the file's name in the download cache.
        summary: what the file is, one line.
        needed_by: what uses it, for messages and listings.
        licence: the licence the file is published under.
        sha256: its full hex sha256; ``None`` only for a file we have not been able to pin, which
            is then never downloaded (the user fetches it by hand).
        size: its size in bytes, when known.
        urls: where it is published, tried in order; empty for files that only ship.
        packaged: path inside the installed package, for files that ship with superres.
        data_paths: paths relative to the data root where a copy is looked for.
        torch_hub: also look in torch's hub cache (torchvision's checkpoints).
        option: the command-line option that takes a local copy instead, for messages.
    """

    name: str
    filename: str
    summary: str
    needed_by: str
    licence: str
    sha256: str | None
    size: int | None = None
    urls: tuple[str, ...] = ()
    packaged: str | None = None
    data_paths: tuple[str, ...] = ()
    torch_hub: bool = False
    option: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"asset name {self.name!r} must be lower-case kind/what")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"asset {self.name!r}: sha256 must be 64 lower-case hex digits")
        if not (self.urls or self.packaged or self.data_paths):
            raise ValueError(f"asset {self.name!r} has no URL, package path or data path")

    @property
    def downloadable(self) -> bool:
        """Published at a URL and pinned by its sha256, so :func:`asset_path` may download it."""
        return bool(self.urls) and self.sha256 is not None

    @property
    def get_command(self) -> str:
        """The command that downloads it."""
        return f"superres assets get {self.name}"


ASSETS: Registry[Asset] = Registry("asset", UnknownAssetError)


def register_asset(asset: Asset) -> Asset:
    """Add ``asset`` to :data:`ASSETS` (each name once)."""
    return ASSETS.add(asset.name, asset)


def get_asset(name: str) -> Asset:
    """The catalog entry ``name``; unknown names raise :class:`UnknownAssetError`."""
    return ASSETS.get(name)


def list_assets(pattern: str | None = None) -> list[str]:
    """Asset names, optionally filtered by a glob (``"lpips/*"``)."""
    return ASSETS.names(pattern)


def _torch_hub_dir() -> Path:
    import torch.hub  # torch's own rule ($TORCH_HOME, XDG_CACHE_HOME, set_dir)

    return Path(torch.hub.get_dir()) / "checkpoints"


def places(asset: Asset, *, data_root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`asset_path` looks for ``asset``, in order (the cache last but one)."""
    found: list[Path] = []
    if asset.packaged is not None:
        found.append(PACKAGE_DIR / asset.packaged)
    root = resolve_data_root(data_root)
    found.extend(root / relative for relative in asset.data_paths)
    found.append(default_cache_dir() / asset.filename)
    if asset.torch_hub:
        found.append(_torch_hub_dir() / asset.filename)
    return found


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # only part of the cache key: an edited file is hashed again
    return sha256_file(path)


def _verified(path: Path, asset: Asset) -> Path:
    if asset.sha256 is None:
        return path
    stat = path.stat()
    actual = _digest(str(path), stat.st_mtime_ns, stat.st_size)
    if actual != asset.sha256:
        raise ChecksumMismatchError(
            str(path),
            asset.sha256,
            actual,
            f"It is not {asset.filename} ({asset.summary}), or it is corrupt or truncated: "
            f"delete or replace it, then run `{asset.get_command}`.",
        )
    return path


def find_asset(asset: Asset, *, data_root: str | os.PathLike[str] | None = None) -> Path | None:
    """The first verified local copy of ``asset``, or ``None`` when there is none.

    Raises:
        ChecksumMismatchError: a copy exists at one of :func:`places` with another sha256.
    """
    for place in places(asset, data_root=data_root):
        if place.is_file():
            return _verified(place, asset)
    return None


AssetState = Literal["present", "missing", "wrong sha256"]


def asset_state(
    asset: Asset, *, data_root: str | os.PathLike[str] | None = None
) -> tuple[AssetState, Path | None]:
    """For listings: whether ``asset`` is here, and the file (or the bad file) it found."""
    try:
        path = find_asset(asset, data_root=data_root)
    except ChecksumMismatchError as exc:
        return "wrong sha256", Path(exc.source)
    return ("present", path) if path is not None else ("missing", None)


def describe_size(size: int | None) -> str:
    """A size for people: ``\"3.0 MiB\"``, ``\"6 KiB\"``, or ``\"size unknown\"``."""
    if size is None:
        return "size unknown"
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def _not_found(assets: Sequence[Asset], data_root: str | os.PathLike[str] | None) -> str:
    first = assets[0]
    looked = [str(p) for a in assets for p in places(a, data_root=data_root)]
    names = " or ".join(f"{a.filename} ({a.summary}, {describe_size(a.size)})" for a in assets)
    message = f"{first.needed_by} needs {names}, which is not here (looked at {', '.join(looked)})."
    if first.packaged is not None and not first.urls:
        return (
            f"{message} It ships with superres, so this installation is incomplete: reinstall "
            "superres."
        )
    cache = default_cache_dir() / first.filename
    local = f" or pass your own copy with {first.option}" if first.option else ""
    getter = next((a for a in assets if a.downloadable), None)
    if getter is not None:
        return (
            f"{message} Get it with `{getter.get_command}` (downloads {getter.urls[0]}, sha256 "
            f"{getter.sha256}), or put the file at {cache}{local}."
        )
    if not first.urls:
        where = places(first, data_root=data_root)[0]
        return (
            f"{message} It is not published for download: put a copy at {where} or {cache}{local}."
        )
    return (
        f"{message} It has no pinned sha256, so superres does not download it: download it "
        f"yourself from {first.urls[0]} and put it at {cache}{local}."
    )


def asset_path(
    assets: str | Asset | Sequence[str | Asset],
    *,
    path: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    progress: bool = True,
) -> Path:
    """A local, verified copy of an asset (see the module docstring for the search order).

    Args:
        assets: an asset or its name; or several that serve the same purpose, best first (the
            first present one is used, else the first downloadable one is downloaded).
        path: the user's own copy, used as it is (no hash check); it must exist.
        data_root: the data root to look in (default ``SUPERRES_DATA``, else
            ``<user cache>/data``).
        download: download a missing asset that has a pinned sha256 (the user asked for it).
        progress: show a progress bar while downloading.

    Raises:
        AssetNotFoundError: no copy is here and none may be downloaded, or ``path`` does not
            exist; the message names the file, where it looked and the command that gets it.
        ChecksumMismatchError: a copy was found (or downloaded) with another sha256.
        DownloadError, OfflineError: the allowed download failed.
    """
    items = [assets] if isinstance(assets, str | Asset) else list(assets)
    resolved = [get_asset(a) if isinstance(a, str) else a for a in items]
    if not resolved:
        raise ValueError("asset_path needs at least one asset")
    first = resolved[0]
    if path is not None:
        given = Path(path).expanduser()
        if not given.is_file():
            what = "is a folder, not a file" if given.is_dir() else "does not exist"
            raise AssetNotFoundError(
                f"{str(given)!r} {what}; {first.needed_by} expected {first.filename} "
                f"({first.summary}) there. Check the path, or leave the option out to use the "
                f"pinned copy (`{first.get_command}`)."
            )
        return given
    for asset in resolved:
        found = find_asset(asset, data_root=data_root)
        if found is not None:
            return found
    getter = next((a for a in resolved if a.downloadable), None)
    if not download or getter is None:
        raise AssetNotFoundError(_not_found(resolved, data_root))
    assert getter.sha256 is not None  # downloadable
    last: Exception | None = None
    for url in getter.urls:
        try:
            return fetch(url, sha256=getter.sha256, filename=getter.filename, progress=progress)
        except (OSError, ValueError) as exc:  # the next mirror, if any
            last = exc
    assert last is not None
    raise last


# --- the catalog ----------------------------------------------------------------------------------

_ZOO_NEEDED = "superres upscale/eval --model {name}"
_TORCHVISION = "BSD-3-Clause (torchvision); trained on ImageNet, for research use"
_LPIPS_COMMIT = "082bb24f84c091ea94de2867d34c4544f68e0963"
_BASICSR_COMMIT = "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a"

_ZOO: tuple[tuple[str, int, str], ...] = (
    ("srcnn-x4", 116866, "021cc08bfa1c4a1f792bb82dae0fe7b1071e0936c3120dc46a2c7add59127435"),
    ("srresnet-x4", 3124492, "e5de9ace0a4b653f0531b64893d0c9ae676cf448eea08b8a49855d0462338205"),
    ("srresnet-x2", 2828634, "284dc3750fcaabf9ea0b27e76e5f9f90b1d0b747d4becf904089b4a1fa4bc34f"),
    (
        "edsr-baseline-x4",
        3043406,
        "21f54c0e722166fd4e491cad8e739a85c955153db35ec1287b109f57dc239571",
    ),
    (
        "rrdbnet-6b-x4",
        8954886,
        "eefdf4eee5a352de48d47a2869b8ee15f81231ed88dc51dc468d5da924baa685",
    ),
    ("srgan-x4", 3125028, "c56838c2232f8537e3562943026c0bbbfd4718196c7912bacf61b4f537ca081e"),
    (
        "esrgan-6b-x4",
        8955270,
        "341813f61da0e0d04fba575e424073acf097d831e8ef37396e9524512aad862c",
    ),
    (
        "real-compact-psnr-x4",
        2438376,
        "946d5ab672526a274f8d1b546f42f84dae3aac5a25489e741977afe7e013ef3f",
    ),
)
for _name, _bytes, _sha in _ZOO:
    register_asset(
        Asset(
            name=f"zoo/{_name}",
            filename=f"{_name}.safetensors",
            summary=f"the zoo's {_name} weights (float16, trained by this project)",
            needed_by=_ZOO_NEEDED.format(name=_name),
            licence="BSD-3-Clause (superres)",
            sha256=_sha,
            size=_bytes,
            packaged=f"weights/{_name}.safetensors",
            option="--weights",
        )
    )

for _arch, _file, _bytes, _sha, _what, _users in (
    (
        "alexnet",
        "alexnet-owt-7be5be79.pth",
        244408911,
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        "torchvision AlexNet (IMAGENET1K_V1)",
        "LPIPS(net='alex')",
    ),
    (
        "vgg16",
        "vgg16-397923af.pth",
        553433881,
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        "torchvision VGG16 (IMAGENET1K_V1, no batch norm)",
        "LPIPS(net='vgg')",
    ),
    (
        "vgg19",
        "vgg19-dcbb9e9d.pth",
        574673361,
        "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        "torchvision VGG19 (IMAGENET1K_V1, no batch norm)",
        "the VGG perceptual loss (SRGAN/ESRGAN recipes)",
    ),
    (
        "squeezenet1_1",
        "squeezenet1_1-b8a52dc0.pth",
        None,
        "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
        "torchvision SqueezeNet 1.1 (IMAGENET1K_V1)",
        "LPIPS(net='squeeze') and the SqueezeNet perceptual loss",
    ),
):
    register_asset(
        Asset(
            name=f"imagenet/{_arch}",
            filename=_file,
            urls=(f"https://download.pytorch.org/models/{_file}",),
            summary=_what,
            needed_by=_users,
            licence=_TORCHVISION,
            option="--lpips-trunk" if _arch != "vgg19" else "loss.weights in the recipe",
            sha256=_sha,
            size=_bytes,
            torch_hub=True,
        )
    )

register_asset(
    Asset(
        name="imagenet/squeezenet1_1-features",
        filename="squeezenet1_1_imagenet_features.safetensors",
        summary="torchvision SqueezeNet 1.1 ImageNet weights, features.* only, bit-exact",
        needed_by="LPIPS(net='squeeze') and the SqueezeNet perceptual loss",
        licence=_TORCHVISION,
        sha256="a3583cefdad6f4d03a1cb5f692b218f07c6fcff762defbd24d25509a37e2b9c9",
        size=2895328,
        data_paths=("weights/squeezenet1_1_imagenet_features.safetensors",),
        option="--lpips-trunk",
    )
)

for _version, _net, _bytes, _sha in (
    ("0.1", "alex", 6009, "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    ("0.1", "vgg", 7289, "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
    ("0.1", "squeeze", 10811, "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"),
    ("0.0", "alex", 5455, "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5"),
    ("0.0", "vgg", 6735, "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c"),
    ("0.0", "squeeze", 10057, "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf"),
):
    register_asset(
        Asset(
            name=f"lpips/v{_version}/{_net}",
            filename=f"lpips-v{_version}-{_net}.pth",  # "alex.pth" is ambiguous across versions
            summary=f"LPIPS v{_version} linear heads for net={_net!r}",
            needed_by=f"LPIPS(net={_net!r}, version={_version!r})",
            licence="BSD-2-Clause (richzhang/PerceptualSimilarity)",
            sha256=_sha,
            size=_bytes,
            urls=(
                f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/"
                f"{_LPIPS_COMMIT}/lpips/weights/v{_version}/{_net}.pth",
            ),
            data_paths=(f"weights/lpips/v{_version}/{_net}.pth",),
        )
    )

register_asset(
    Asset(
        name="niqe/pristine",
        filename="niqe_pris_params.npz",
        summary="NIQE's pristine model (MATLAB's modelparameters.mat as BasicSR's npz)",
        needed_by="NIQE (superres metrics and report, the Perceptual Index)",
        licence="Apache-2.0 (BasicSR's conversion of the LIVE release)",
        sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
        size=11850,
        urls=(
            f"https://raw.githubusercontent.com/XPixelGroup/BasicSR/{_BASICSR_COMMIT}/"
            "basicsr/metrics/niqe_pris_params.npz",
        ),
        data_paths=("niqe/niqe_pris_params.npz",),
        option="--niqe-params",
    )
)

register_asset(
    Asset(
        name="ma/model",
        filename="NRQM_model.mat",
        summary="Ma et al.'s trained model (3 random forests and linear weights)",
        needed_by="Ma's metric (NRQM) and the Perceptual Index",
        licence="the authors' release (chaoma99/sr-metric), no licence stated",
        sha256=None,  # not yet verified against the authors' model.mat: never downloaded
        urls=(
            "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/NRQM_model.mat",
        ),
        data_paths=("weights/NRQM_model.mat",),
        option="--ma-model",
    )
)
