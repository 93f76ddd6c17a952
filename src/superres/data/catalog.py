"""The datasets superres knows by name, and where it looks for them on disk.

A data root holds one folder per dataset, in the layout the SR benchmarks are distributed in::

    ROOT/Set5/HR/baby.png                    high-resolution originals (not mod-cropped)
    ROOT/Set5/LR_bicubic_x4/baby.png         official LR images, same file name (optional)
    ROOT/Set5/LR_bicubic/X4/babyx4.png       the EDSR "benchmark" naming is accepted too

The root is, in order: an explicit ``--data-root``/``root=`` argument, the ``SUPERRES_DATA``
environment variable, or ``<user cache>/superres/data``. Official LR files are used when present
(they are bit-identical to our MATLAB-exact bicubic, see :mod:`superres.imaging.resize`); otherwise
the LR image is generated and cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from superres.errors import DatasetNotFoundError, UnknownDatasetError
from superres.io.files import resolve_data_root
from superres.registry import Registry

#: File extensions recognised as images inside dataset folders.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset the catalog knows.

    Attributes:
        name: catalog name, lower case (``"set5"``).
        folder: folder name under the data root (``"Set5"``).
        split: ``"test"`` (report on it, never tune), ``"valid"`` or ``"train"``.
        num_images: number of HR images in the official release.
        summary: one line description.
        source: where the official release is published (a URL or a repository path).
        citation: the paper that introduced it.
    """

    name: str
    folder: str
    split: str
    num_images: int
    summary: str
    source: str
    citation: str


DATASETS: Registry[DatasetInfo] = Registry("dataset", UnknownDatasetError)

_SELFEXSR = "https://github.com/jbhuang0604/SelfExSR (data/<set>/image_SRF_<s>/*_HR.png)"

_ENTRIES = (
    DatasetInfo(
        name="set5",
        folder="Set5",
        split="test",
        num_images=5,
        summary="5 images (baby, bird, butterfly, head, woman)",
        source=_SELFEXSR,
        citation="Bevilacqua et al., BMVC 2012",
    ),
    DatasetInfo(
        name="set14",
        folder="Set14",
        split="test",
        num_images=14,
        summary="14 images incl. one grayscale (bridge)",
        source=_SELFEXSR,
        citation="Zeyde et al., Curves and Surfaces 2010",
    ),
    DatasetInfo(
        name="bsd100",
        folder="BSD100",
        split="test",
        num_images=100,
        summary="the 100 BSDS300 test images, 481x321",
        source=_SELFEXSR,
        citation="Martin et al., ICCV 2001",
    ),
    DatasetInfo(
        name="urban100",
        folder="Urban100",
        split="test",
        num_images=100,
        summary="100 urban scenes with regular structure",
        source=_SELFEXSR,
        citation="Huang et al., CVPR 2015",
    ),
    DatasetInfo(
        name="manga109",
        folder="Manga109",
        split="test",
        num_images=109,
        summary="109 manga volumes (Japanese comics)",
        source="http://www.manga109.org (request access)",
        citation="Matsui et al., MTAP 2017",
    ),
    DatasetInfo(
        name="div2k-valid",
        folder="DIV2K_valid",
        split="valid",
        num_images=100,
        summary="DIV2K validation images 0801-0900, 2K",
        source="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
        citation="Agustsson & Timofte, CVPRW 2017",
    ),
    DatasetInfo(
        name="pirm-val",
        folder="PIRM_valid",
        split="valid",
        num_images=100,
        summary="PIRM 2018 perceptual SR challenge validation set",
        source="https://pirm.github.io (PIRM2018 self-validation set)",
        citation="Blau et al., ECCVW 2018",
    ),
    DatasetInfo(
        name="t91",
        folder="T91",
        split="train",
        num_images=91,
        summary="the 91 training images of Yang et al. used by SRCNN",
        source="https://github.com/tegg89/SRCNN-Tensorflow (Train/*.bmp)",
        citation="Yang et al., TIP 2010",
    ),
    DatasetInfo(
        name="bsd200",
        folder="BSD200",
        split="train",
        num_images=200,
        summary="the 200 BSDS300 training images (JPEG)",
        source="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/",
        citation="Martin et al., ICCV 2001",
    ),
    DatasetInfo(
        name="general100",
        folder="General100",
        split="train",
        num_images=100,
        summary="the 100 training images of FSRCNN",
        source="http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html",
        citation="Dong et al., ECCV 2016",
    ),
    DatasetInfo(
        name="div2k-train",
        folder="DIV2K_train",
        split="train",
        num_images=800,
        summary="DIV2K training images 0001-0800, 2K",
        source="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
        citation="Agustsson & Timofte, CVPRW 2017",
    ),
    DatasetInfo(
        name="flickr2k",
        folder="Flickr2K",
        split="train",
        num_images=2650,
        summary="2650 2K Flickr images (extra training data of EDSR)",
        source="https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar",
        citation="Lim et al., CVPRW 2017",
    ),
)
for _info in _ENTRIES:
    DATASETS.add(_info.name, _info)


def list_datasets(split: str | None = None) -> list[str]:
    """Catalog names, optionally only those of one split (``"test"``, ``"valid"``, ``"train"``)."""
    return [n for n in DATASETS if split is None or DATASETS.get(n).split == split]


def get_dataset_info(name: str) -> DatasetInfo:
    """The catalog entry for ``name``; unknown names raise :class:`UnknownDatasetError`."""
    return DATASETS.get(name)


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files ignored)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def dataset_hr_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of HR images of dataset ``name`` under the data root.

    Raises:
        UnknownDatasetError: ``name`` is not in the catalog.
        DatasetNotFoundError: the folder is missing or holds no images; the message says where
            the images were expected and where to get them.
    """
    info = DATASETS.get(name)
    data_root = resolve_data_root(root)
    hr_dir = data_root / info.folder / "HR"
    if not hr_dir.is_dir() or not list_image_files(hr_dir):
        how_root = (
            "--data-root/root="
            if root is not None
            else ("SUPERRES_DATA" if os.environ.get("SUPERRES_DATA") else "the default data root")
        )
        raise DatasetNotFoundError(
            f"dataset {info.name!r} not found: expected its {info.num_images} HR images in "
            f"{hr_dir} (data root from {how_root}). Fix: download it from {info.source} "
            f"and put the HR images in {hr_dir}, or point --data-root (or SUPERRES_DATA) at a "
            f"folder that holds {info.folder}/HR/."
        )
    return hr_dir


def official_lr_path(hr_path: Path, scale: int) -> Path | None:
    """The official LR file for ``hr_path`` at ``scale``, if the dataset ships one."""
    dataset_dir = hr_path.parent.parent
    candidates = (
        dataset_dir / f"LR_bicubic_x{scale}" / hr_path.name,
        dataset_dir / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}{hr_path.suffix}",
    )
    return next((c for c in candidates if c.is_file()), None)
