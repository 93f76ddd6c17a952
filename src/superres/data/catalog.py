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

# One row per dataset, in DatasetInfo's field order: (name, folder, split, num_images, summary,
# then source, then citation).
# fmt: off
_TABLE: tuple[tuple[str, str, str, int, str, str, str], ...] = (
    ("set5", "Set5", "test", 5, "5 images (baby, bird, butterfly, head, woman)",
        "https://github.com/jbhuang0604/SelfExSR (data/<set>/image_SRF_<s>/*_HR.png)",
        "Bevilacqua et al., BMVC 2012"),
    ("set14", "Set14", "test", 14, "14 images incl. one grayscale (bridge)",
        "https://github.com/jbhuang0604/SelfExSR (data/<set>/image_SRF_<s>/*_HR.png)",
        "Zeyde et al., Curves and Surfaces 2010"),
    ("bsd100", "BSD100", "test", 100, "the 100 BSDS300 test images, 481x321",
        "https://github.com/jbhuang0604/SelfExSR (data/<set>/image_SRF_<s>/*_HR.png)",
        "Martin et al., ICCV 2001"),
    ("urban100", "Urban100", "test", 100, "100 urban scenes with regular structure",
        "https://github.com/jbhuang0604/SelfExSR (data/<set>/image_SRF_<s>/*_HR.png)",
        "Huang et al., CVPR 2015"),
    ("manga109", "Manga109", "test", 109, "109 manga volumes (Japanese comics)",
        "http://www.manga109.org (request access)",
        "Matsui et al., MTAP 2017"),
    ("div2k-valid", "DIV2K_valid", "valid", 100, "DIV2K validation images 0801-0900, 2K",
        "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
        "Agustsson & Timofte, CVPRW 2017"),
    ("pirm-val", "PIRM_valid", "valid", 100, "PIRM 2018 perceptual SR challenge validation set",
        "https://pirm.github.io (PIRM2018 self-validation set)",
        "Blau et al., ECCVW 2018"),
    ("t91", "T91", "train", 91, "the 91 training images of Yang et al. used by SRCNN",
        "https://github.com/tegg89/SRCNN-Tensorflow (Train/*.bmp)",
        "Yang et al., TIP 2010"),
    ("bsd200", "BSD200", "train", 200, "the 200 BSDS300 training images (JPEG)",
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/",
        "Martin et al., ICCV 2001"),
    ("general100", "General100", "train", 100, "the 100 training images of FSRCNN",
        "http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html",
        "Dong et al., ECCV 2016"),
    ("div2k-train", "DIV2K_train", "train", 800, "DIV2K training images 0001-0800, 2K",
        "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
        "Agustsson & Timofte, CVPRW 2017"),
    ("flickr2k", "Flickr2K", "train", 2650, "2650 2K Flickr images (extra training data of EDSR)",
        "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar",
        "Lim et al., CVPRW 2017"),
)
# fmt: on
for _row in _TABLE:
    DATASETS.add(_row[0], DatasetInfo(*_row))


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
