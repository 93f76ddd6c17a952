"""The datasets superres knows by name, and where it looks for them on disk.

A data root holds one folder per dataset, in the layout the SR benchmarks are distributed in::

    ROOT/Set5/HR/baby.png                    high-resolution originals (not mod-cropped)
    ROOT/Set5/LR_bicubic_x4/baby.png         official LR images, same file name (optional)
    ROOT/Set5/LR_bicubic/X4/babyx4.png       the EDSR "benchmark" naming is accepted too

The root is, in order: an explicit ``--data-root``/``root=`` argument, the ``SUPERRES_DATA``
environment variable, or ``<user cache>/superres/data``. Official LR files are used when present
(they are bit-identical to our MATLAB-exact bicubic, see :mod:`superres.imaging.resize`); otherwise
the LR image is generated and cached.

Any folder of HR images is a dataset too: a name that is not in the catalog but is a path
(``/my/HR``, ``./photos``) stands for the images directly inside it, with LR files looked for
beside it in the same layouts (``/my/LR_bicubic_x4/``, ``/my/LR_bicubic/X4/``, or ``/my/LR/``
when its images have the LR size) and generated with MATLAB bicubic (and cached) where absent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from superres.errors import DatasetModifiedError, DatasetNotFoundError, UnknownDatasetError
from superres.io.files import resolve_data_root
from superres.registry import Registry

logger = logging.getLogger(__name__)

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
        stems: the file names (without extension) of the official HR images, sorted; ``None``
            where only the count is recorded. ``len(stems) == num_images``.
        degraded_from: for a real-world set (``bsd100-real``), the catalog set whose HR images
            it uses; its LR images are those HR degraded by the Real-ESRGAN pipeline with a fixed
            seed per image (:func:`superres.data.datasets.degraded_lr`), never official files.
    """

    name: str
    folder: str
    split: str
    num_images: int
    summary: str
    source: str
    citation: str
    stems: tuple[str, ...] | None = None
    degraded_from: str | None = None

    @property
    def label(self) -> str:
        """How tables, figures and saved outputs name the set: its folder (``BSD100``), with
        ``-real`` for a real-world set, whose HR folder is its base set's."""
        return f"{self.folder}-real" if self.degraded_from is not None else self.folder


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


def _numbered(pattern: str, first: int, last: int, *, skip: Sequence[int] = ()) -> tuple[str, ...]:
    """``pattern.format(i)`` for ``i`` in ``first..last`` (inclusive) except ``skip``."""
    return tuple(pattern.format(i) for i in range(first, last + 1) if i not in skip)


def _words(text: str) -> tuple[str, ...]:
    """The space-separated names in ``text``."""
    return tuple(text.split())


# The HR file stems of each release (read from the official copies; see each row's source).
# BSD100 and BSD200 are named by BSDS image id. Manga109 and PIRM_valid: count only.
_STEMS: dict[str, Sequence[str]] = {
    "set5": ("baby", "bird", "butterfly", "head", "woman"),
    "set14": _words(
        "baboon barbara bridge coastguard comic face flowers foreman lenna man monarch pepper "
        "ppt3 zebra"
    ),
    "bsd100": _words(
        "101085 101087 102061 103070 105025 106024 108005 108070 108082 109053 119082 12084 "
        "123074 126007 130026 134035 14037 143090 145086 147091 148026 148089 156065 157055 "
        "159008 160068 16077 163085 167062 167083 170057 175032 175043 182053 189080 19021 196073 "
        "197017 208001 210088 21077 216081 219090 220075 223061 227092 229036 236037 24077 241004 "
        "241048 253027 253055 260058 271035 285079 291000 295087 296007 296059 299086 300091 "
        "302008 304034 304074 306005 3096 33039 351093 361010 37073 376043 38082 38092 385039 "
        "41033 41069 42012 42049 43074 45096 54082 55073 58060 62096 65033 66053 69015 69020 "
        "69040 76053 78004 8023 85048 86000 86016 86068 87046 89072 97033"
    ),
    "urban100": _numbered("img_{:03d}", 1, 100),
    "div2k-valid": _numbered("{:04d}", 801, 900),
    "t91": _numbered("t{}", 1, 66, skip=(41,)) + _numbered("tt{}", 1, 27, skip=(11,)),
    "bsd200": _words(
        "100075 100080 100098 103041 104022 105019 105053 106020 106025 108041 108073 109034 "
        "112082 113009 113016 113044 117054 118020 118035 12003 12074 122048 124084 126039 130034 "
        "134008 134052 135037 135069 138032 138078 140055 140075 144067 145014 145053 147021 "
        "147062 15004 15088 151087 153077 153093 155060 156079 157036 159029 159045 159091 16052 "
        "161062 163014 163062 164074 166081 169012 170054 172032 173036 176019 176035 176039 "
        "178054 181018 181079 181091 183055 183087 187003 187029 187039 187071 187083 188005 "
        "188063 188091 189003 189011 196015 198004 198023 198054 20008 202012 207056 209070 2092 "
        "216041 216053 216066 22013 22090 22093 225017 227040 227046 23025 23080 23084 231015 "
        "232038 236017 238011 239007 239096 24004 24063 242078 245051 246016 246053 247085 249061 "
        "249087 25098 253036 254033 254054 260081 26031 268002 27059 271008 271031 274007 277095 "
        "28075 28096 285036 286092 292066 293029 299091 301007 302003 309004 310007 311068 311081 "
        "314016 317080 323016 326038 33066 35008 35010 35058 35070 35091 353013 361084 365025 "
        "365073 368016 368078 370036 372047 374020 374067 376001 376020 385028 388016 41004 41025 "
        "42044 42078 43070 43083 45077 46076 48055 54005 55067 55075 56028 59078 60079 61060 "
        "61086 65010 65019 65074 65132 66039 66075 67079 68077 71046 76002 78019 80099 8049 8143 "
        "87065 90076 92059 94079 95006 97017"
    ),
    "general100": _numbered("im_{}", 1, 100),
    "div2k-train": _numbered("{:04d}", 1, 800),
    "flickr2k": _numbered("{:06d}", 1, 2650),
}
for _row in _TABLE:
    _stems = _STEMS.get(_row[0])
    DATASETS.add(
        _row[0], DatasetInfo(*_row, stems=None if _stems is None else tuple(sorted(_stems)))
    )

#: The real-world benchmark sets: a test set's HR, degraded (blur, resize, noise, JPEG, twice) by
#: the Real-ESRGAN pipeline with fixed per-image seeds, so everyone regenerates the same LR.
#: ``set5-real`` is for validating real-world training runs.
for _name, _base in (
    ("set5-real", "set5"),
    ("bsd100-real", "bsd100"),
    ("urban100-real", "urban100"),
):
    _info = DATASETS.get(_base)
    DATASETS.add(
        _name,
        replace(
            _info,
            name=_name,
            summary=f"{_info.folder} HR degraded by the Real-ESRGAN pipeline (fixed seeds)",
            source=f"generated from {_base} (superres data get {_base})",
            citation=f"{_info.citation}; Wang et al., ICCVW 2021 (Real-ESRGAN)",
            degraded_from=_base,
        ),
    )


def list_datasets(split: str | None = None) -> list[str]:
    """Catalog names, optionally only those of one split (``"test"``, ``"valid"``, ``"train"``)."""
    return [n for n in DATASETS if split is None or DATASETS.get(n).split == split]


def is_folder_dataset(name: str) -> bool:
    """``name`` is not a catalog name but a folder path (it has a path separator, starts with
    ``.`` or ``~``, or is an existing folder): the images in that folder are the dataset."""
    if name in DATASETS:
        return False
    return "/" in name or os.sep in name or name.startswith((".", "~")) or Path(name).is_dir()


def _folder_info(name: str) -> DatasetInfo:
    """The entry of a folder dataset: named by its path, shown by its folder (``/my/HR`` -> my)."""
    path = Path(name).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"dataset folder {name!r} does not exist or is not a folder; give a folder of HR "
            "images (e.g. /data/mine/HR) or a catalog name (superres datasets lists them)"
        )
    files = list_image_files(path)
    if not files:
        raise DatasetNotFoundError(
            f"dataset folder {name!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)} "
            "files directly inside it)"
        )
    resolved = path.resolve()
    shown = resolved.parent.name if resolved.name.upper() == "HR" else resolved.name
    return DatasetInfo(
        name=name,
        folder=shown or str(resolved),
        split="custom",
        num_images=len(files),
        summary=f"the {len(files)} images in {resolved}",
        source=str(resolved),
        citation="",
    )


def get_dataset_info(name: str) -> DatasetInfo:
    """The catalog entry for ``name``, or a folder dataset's (see :func:`is_folder_dataset`).

    Raises:
        UnknownDatasetError: ``name`` is neither in the catalog nor a path.
        DatasetNotFoundError: ``name`` is a path, but not a folder holding images.
    """
    if is_folder_dataset(name):
        return _folder_info(name)
    return DATASETS.get(name)


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files ignored)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


#: How many file names an error message lists at most.
_NAMES_SHOWN = 5


@dataclass(frozen=True)
class HRFilesCheck:
    """How the HR folder of a catalogued dataset compares with its catalog entry.

    Attributes:
        folder: the HR folder.
        files: its image files, sorted by name (what an evaluation scores).
        expected: the catalog's image count.
        missing: catalog stems with no file, sorted.
        extra: names of files whose stem is not in the catalog or repeats one, sorted.
    """

    folder: Path
    files: tuple[Path, ...]
    expected: int
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def modified(self) -> bool:
        """The folder is not the official release: another count, or other names."""
        return len(self.files) != self.expected or bool(self.missing or self.extra)


def check_hr_files(name: str, folder: Path) -> HRFilesCheck:
    """Compare the image files in ``folder`` with the count and stems of dataset ``name``."""
    info = get_dataset_info(name)
    files = tuple(list_image_files(folder))
    if info.stems is None:
        return HRFilesCheck(folder=folder, files=files, expected=info.num_images)
    wanted = set(info.stems)
    seen: set[str] = set()
    extra: list[str] = []
    for path in files:
        if path.stem not in wanted or path.stem in seen:
            extra.append(path.name)
        seen.add(path.stem)
    missing = tuple(sorted(wanted - seen))
    return HRFilesCheck(
        folder=folder, files=files, expected=info.num_images, missing=missing, extra=tuple(extra)
    )


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def benchmark_hr_files(
    name: str, root: str | os.PathLike[str] | None = None, *, allow_modified: bool = False
) -> HRFilesCheck:
    """The HR files of dataset ``name``, checked against the catalog before anything is scored.

    Args:
        allow_modified: accept a folder whose count or names differ from the catalog's (logged
            as a warning; the result's ``modified`` says so, for the tables to show).

    Raises:
        UnknownDatasetError, DatasetNotFoundError: see :func:`dataset_hr_dir`.
        DatasetModifiedError: the folder holds another number of images, or other names, than
            the official release, and ``allow_modified`` is false. The message names the folder,
            both counts, up to five extra and missing names, and the fix.
    """
    info = get_dataset_info(name)
    check = check_hr_files(name, dataset_hr_dir(name, root))
    if not check.modified:
        return check
    what = f"expected {check.expected} HR images, found {len(check.files)}"
    if check.extra:
        what += f"; {len(check.extra)} extra: {_some(check.extra)}"
    if check.missing:
        what += f"; {len(check.missing)} missing: {_some(check.missing)}"
    if info.stems is None:
        what += " (the catalog records the count only)"
    if allow_modified:
        logger.warning("scoring a modified %s: %s in %s", info.folder, what, check.folder)
        return check
    raise DatasetModifiedError(
        f"dataset {info.name!r} in {check.folder} differs from the official release: {what}. "
        f"Fix: restore the set (re-download it from {info.source} and re-extract its HR images "
        f"into {check.folder}), or, to score the modified set anyway, pass --allow-modified to "
        "`superres eval`/`superres report` (allow_modified=True in Python)."
    )


def dataset_hr_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of HR images of dataset ``name`` under the data root.

    Raises:
        UnknownDatasetError: ``name`` is not in the catalog.
        DatasetNotFoundError: the folder is missing or holds no images; the message says where
            the images were expected and where to get them.
    """
    if is_folder_dataset(name):
        _folder_info(name)  # raises for a missing or empty folder
        return Path(name).expanduser()
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
    """The official LR file for ``hr_path`` at ``scale``, if the dataset ships one.

    Looked for beside the HR folder: ``LR_bicubic_x{scale}/NAME``, ``LR_bicubic/X{scale}/
    STEMx{scale}.EXT``, then ``LR/NAME`` (a folder that does not name its scale, used only when
    the file is the size of the mod-cropped HR divided by ``scale``).
    """
    dataset_dir = hr_path.parent.parent
    candidates = (
        dataset_dir / f"LR_bicubic_x{scale}" / hr_path.name,
        dataset_dir / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}{hr_path.suffix}",
    )
    found = next((c for c in candidates if c.is_file()), None)
    plain = dataset_dir / "LR" / hr_path.name
    if found is None and plain.is_file() and _has_lr_size(plain, hr_path, scale):
        return plain
    return found


def _has_lr_size(lr_path: Path, hr_path: Path, scale: int) -> bool:
    """``lr_path``'s size is ``hr_path``'s divided by ``scale`` (read from the headers only)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(lr_path) as lr, Image.open(hr_path) as hr:
            return lr.size == (hr.size[0] // scale, hr.size[1] // scale)
    except (OSError, UnidentifiedImageError):
        return False
