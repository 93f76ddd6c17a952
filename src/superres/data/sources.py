"""Where each dataset is published, on what terms, and where its files land under the data root.

One :class:`DataSource` per name ``superres data get`` knows: the names of
:mod:`superres.data.catalog` (same ``folder``), plus the DIV2K LR tracks, DF2K, the PIRM test set
and ADE20K, which the catalog does not score. Each source lists its archives (official URL,
published mirrors, size and checksum where the project or a well-kept tool publishes one; "none
published" where nobody does), the licence or terms shown before the first download, how many
images it holds, and its layout: which folder of each archive lands where under the data root.

Checksums: the md5s of the DIV2K, Flickr2K and EDSR ``benchmark.tar`` archives are the ones
torchSR (``torchsr/datasets/div2k.py``, ``flickr2k.py``, ``benchmarks.py``) pins; they were not
re-downloaded here. Per-file sha256s of the reference copies of Set5, Set14, BSD100, Urban100, T91
and BSD200 (HR and official x4 LR; provenance in the shared data's ``SOURCES.md``) are in
``reference_sha256.txt`` beside this module; :func:`reference_sha256` reads them, and
``superres data verify`` checks contents against them offline. A copy obtained elsewhere (e.g. the
EDSR ``benchmark.tar``, whose HR files are other encodings of the same images) has the right names
and counts but other bytes; ``verify`` reports it as such.

This module imports :mod:`superres.errors`, :mod:`superres.registry` and the catalog
(:mod:`superres.data.catalog`) only.
"""

from __future__ import annotations

import functools
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superres.data.catalog import DATASETS
from superres.errors import UnknownDatasetError
from superres.registry import Registry

__all__ = [
    "SOURCES",
    "Archive",
    "DataSource",
    "get_source",
    "list_sources",
    "reference_sha256",
]

_MANIFEST = Path(__file__).with_name("reference_sha256.txt")


@dataclass(frozen=True, kw_only=True)
class Archive:
    """One downloadable archive.

    Attributes:
        url: the official address.
        mirrors: published copies of the same file, tried in order after ``url``.
        size: its size in bytes, where published; ``None`` otherwise.
        md5: the published md5, or ``None``.
        sha256: the sha256, where one is published or was verified here; or ``None``.
        checksum_from: who publishes the checksum ("none published" when nobody does).
        layout: ``(folder inside the archive, folder under the data root)`` pairs; only these
            folders are kept.
    """

    url: str
    mirrors: tuple[str, ...] = ()
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    checksum_from: str = "none published"
    layout: tuple[tuple[str, str], ...]

    @property
    def filename(self) -> str:
        """The archive's file name (the last component of its URL)."""
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """How to get one dataset.

    Attributes:
        name: the name ``superres data get`` takes (lower case; a catalog name where there is one).
        image_dir: the folder of its images under the data root (``"Set5/HR"``).
        summary: one line.
        terms: the licence or terms of use, shown before the first download.
        num_images: images in ``image_dir`` of the official release.
        archives: what to download; empty for a set that cannot be downloaded directly.
        parts: for a composite (DF2K), the names of the sources it is made of.
        request: for a set without a download (Manga109, PIRM): how to obtain it.
    """

    name: str
    image_dir: str
    summary: str
    terms: str
    num_images: int
    archives: tuple[Archive, ...] = ()
    parts: tuple[str, ...] = ()
    request: str | None = None

    @property
    def folder(self) -> str:
        """The top folder of the set under the data root (``"Set5"``)."""
        return PurePosixPath(self.image_dir).parts[0]


SOURCES: Registry[DataSource] = Registry("dataset", UnknownDatasetError)

_DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
_DIV2K_TERMS = (
    "DIV2K (Agustsson & Timofte, CVPRW 2017) is made available for academic research purposes "
    "only; the images are from the web and their copyright stays with their owners. Cite the "
    "NTIRE 2017 challenge paper when you use it."
)
_TORCHSR = "torchSR (torchsr/datasets), md5"
# torchSR's md5 of each DIV2K zip, by (split, track, scale); scale 1 is the HR zip.
_DIV2K_MD5 = {
    ("train", "HR", 1): "bdc2d9338d4e574fe81bf7d158758658",
    ("train", "bicubic", 2): "9a637d2ef4db0d0a81182be37fb00692",
    ("train", "bicubic", 3): "ad80b9fe40c049a07a8a6c51bfab3b6d",
    ("train", "bicubic", 4): "76c43ec4155851901ebbe8339846d93d",
    ("train", "unknown", 2): "1396d023072c9aaeb999c28b81315233",
    ("train", "unknown", 3): "4e651308aaa54d917fb1264395b7f6fa",
    ("train", "unknown", 4): "e3c7febb1b3f78bd30f9ba15fe8e3956",
    ("valid", "HR", 1): "9fcdda83005c5e5997799b69f955ff88",
    ("valid", "bicubic", 2): "1512c9a3f7bde2a1a21a73044e46b9cb",
    ("valid", "bicubic", 3): "18b1d310f9f88c13618c287927b29898",
    ("valid", "bicubic", 4): "21962de700c8d368c6ff83314480eff0",
    ("valid", "unknown", 2): "d319bd9033573d21de5395e6454f34f8",
    ("valid", "unknown", 3): "05184168e3608b5c539fbfb46bcade4f",
    ("valid", "unknown", 4): "8ac3413102bb3d0adc67012efb8a6c94",
}


def _div2k(split: str, track: str, scale: int) -> DataSource:
    count = 800 if split == "train" else 100
    if track == "HR":
        name, zip_name, inside, dest = (
            f"div2k-{split}",
            f"DIV2K_{split}_HR.zip",
            f"DIV2K_{split}_HR",
            f"DIV2K_{split}/HR",
        )
        summary = f"DIV2K {split} HR images, 2K"
    else:
        name = f"div2k-{split}-{track}-x{scale}"
        zip_name = f"DIV2K_{split}_LR_{track}_X{scale}.zip"
        inside = f"DIV2K_{split}_LR_{track}/X{scale}"
        dest = f"DIV2K_{split}/LR_{track}/X{scale}"
        summary = f"DIV2K {split} official LR images, {track} x{scale} (NAMEx{scale}.png)"
    archive = Archive(
        url=_DIV2K + zip_name,
        md5=_DIV2K_MD5[(split, track, scale)],
        checksum_from=_TORCHSR,
        layout=((inside, dest),),
    )
    return DataSource(
        name=name,
        image_dir=dest,
        summary=summary,
        terms=_DIV2K_TERMS,
        num_images=count,
        archives=(archive,),
    )


_BENCHMARK_TAR = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
_BENCHMARK_MD5 = "4ace41d33c2384b97e6b320cd0afd6ba"
_BENCHMARK_TERMS = (
    "{set} is a research benchmark ({cite}); no licence is stated by its authors. The archive is "
    "the EDSR authors' benchmark.tar (Set5, Set14, B100, Urban100 with HR and bicubic LR x2/x3/x4; "
    "about 400 MB), redistributed for research use. Cite the paper that introduced the set."
)


def _benchmark(name: str, folder: str, inside: str, count: int, cite: str) -> DataSource:
    return DataSource(
        name=name,
        image_dir=f"{folder}/HR",
        summary=f"{folder} HR and bicubic LR x2/x3/x4 (from the EDSR benchmark.tar)",
        terms=_BENCHMARK_TERMS.format(set=folder, cite=cite),
        num_images=count,
        archives=(
            Archive(
                url=_BENCHMARK_TAR,
                md5=_BENCHMARK_MD5,
                checksum_from=_TORCHSR,
                layout=((f"benchmark/{inside}", folder),),
            ),
        ),
    )


def _request_only(name: str, image_dir: str, count: int, summary: str, request: str) -> DataSource:
    return DataSource(
        name=name,
        image_dir=image_dir,
        summary=summary,
        terms=request,
        num_images=count,
        request=request,
    )


def _one_archive(
    name: str, folder: str, summary: str, terms: str, count: int, url: str, inside: str
) -> DataSource:
    """A set with one archive (no published checksum) whose folder ``inside`` holds its images."""
    return DataSource(
        name=name,
        image_dir=f"{folder}/HR",
        summary=summary,
        terms=terms,
        num_images=count,
        archives=(Archive(url=url, layout=((inside, f"{folder}/HR"),)),),
    )


_SRCNN_TF = "78be1a24697935fc39a3a8cf59a6632264afade7"
_BSDS_TERMS = (
    "BSDS300 (Martin et al., ICCV 2001), Berkeley: the images come from the Corel collection and "
    "are for research use only; no licence file ships with them."
)
_PIRM = (
    "The PIRM 2018 perceptual SR challenge sets are linked (Google Drive) from https://pirm.github.io"
    " ('Datasets'): download the self-validation or test set there, for research use, cite Blau "
    "et al., ECCVW 2018, then import it with `superres data get {name} --from DIR_OR_ZIP`."
)

_ALL: tuple[DataSource, ...] = (
    *(
        _div2k(split, track, scale)
        for split in ("train", "valid")
        for track, scales in (("HR", (1,)), ("bicubic", (2, 3, 4)), ("unknown", (2, 3, 4)))
        for scale in scales
    ),
    DataSource(
        name="flickr2k",
        image_dir="Flickr2K/HR",
        summary="2650 2K Flickr images with bicubic and unknown LR x2/x3/x4 (EDSR's extra data)",
        terms="Flickr2K (Lim et al., CVPRW 2017) was collected from Flickr by the EDSR authors for "
        "research use; the photographs' copyright stays with their owners.",
        num_images=2650,
        archives=(
            Archive(
                url="https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar",
                md5="5d3f39443d5e9489bff8963f8f26cb03",
                checksum_from=_TORCHSR,
                layout=(
                    ("Flickr2K/Flickr2K_HR", "Flickr2K/HR"),
                    ("Flickr2K/Flickr2K_LR_bicubic", "Flickr2K/LR_bicubic"),
                    ("Flickr2K/Flickr2K_LR_unknown", "Flickr2K/LR_unknown"),
                ),
            ),
        ),
    ),
    DataSource(
        name="df2k",
        image_dir="DIV2K_train/HR",
        summary="DIV2K train + Flickr2K (3450 images): gets both; training reads both folders",
        terms=_DIV2K_TERMS,
        num_images=800,
        parts=("div2k-train", "flickr2k"),
    ),
    _benchmark("set5", "Set5", "Set5", 5, "Bevilacqua et al., BMVC 2012"),
    _benchmark("set14", "Set14", "Set14", 14, "Zeyde et al., Curves and Surfaces 2010"),
    _benchmark("bsd100", "BSD100", "B100", 100, "Martin et al., ICCV 2001"),
    _benchmark("urban100", "Urban100", "Urban100", 100, "Huang et al., CVPR 2015"),
    _request_only(
        "manga109",
        "Manga109/HR",
        109,
        "109 manga volumes (Japanese comics); by request only",
        "Manga109 (Matsui et al., MTAP 2017; Aizawa et al., IEEE MultiMedia 2020) may be used "
        "for academic research only and is not redistributed: request it with the form at "
        "http://www.manga109.org/en/download.html, then import the images with "
        "`superres data get manga109 --from DIR_OR_ZIP`.",
    ),
    _one_archive(
        "t91",
        "T91",
        "the 91 training images of Yang et al. (BMP, from the SRCNN-Tensorflow repository)",
        "T91 (Yang et al., TIP 2010) is a research training set; no image licence is stated "
        "(the repository it is copied from is MIT, covering its code).",
        91,
        f"https://github.com/tegg89/SRCNN-Tensorflow/archive/{_SRCNN_TF}.zip",
        f"SRCNN-Tensorflow-{_SRCNN_TF}/Train",
    ),
    _one_archive(
        "bsd200",
        "BSD200",
        "the 200 BSDS300 training images (JPEG)",
        _BSDS_TERMS,
        200,
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
        "BSDS300/images/train",
    ),
    _request_only(
        "general100",
        "General100/HR",
        100,
        "the 100 training images of FSRCNN",
        "General-100 (Dong et al., ECCV 2016) is linked from the FSRCNN project page "
        "http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html for research use (no checksum "
        "published); download it there, then `superres data get general100 --from DIR_OR_ZIP`.",
    ),
    _request_only(
        "pirm-val",
        "PIRM_valid/HR",
        100,
        "PIRM 2018 self-validation set",
        _PIRM.format(name="pirm-val"),
    ),
    _request_only(
        "pirm-test", "PIRM_test/HR", 100, "PIRM 2018 test set", _PIRM.format(name="pirm-test")
    ),
    _one_archive(
        "ade20k",
        "ADE20K",
        "ADE20K scene parsing training images (20210 JPEG); the outdoor filter is not applied yet",
        "ADE20K (Zhou et al., CVPR 2017), MIT CSAIL: the images are for non-commercial research "
        "and educational use (see https://groups.csail.mit.edu/vision/datasets/ADE20K/terms); "
        "cite the ADE20K papers.",
        20210,
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        "ADEChallengeData2016/images/training",
    ),
)
for _source in _ALL:
    SOURCES.add(_source.name, _source)


def list_sources() -> list[str]:
    """Every name ``superres data get`` knows, in catalog order."""
    return list(SOURCES)


def get_source(name: str) -> DataSource:
    """The source of ``name`` (for a real-world set, its HR set's); an unknown name raises
    :class:`UnknownDatasetError`."""
    if name in DATASETS and (base := DATASETS.get(name).degraded_from) is not None:
        name = base
    return SOURCES.get(name)


@functools.cache
def _manifest() -> dict[str, dict[str, str]]:
    by_folder: dict[str, dict[str, str]] = {}
    for line in _MANIFEST.read_text(encoding="utf-8").splitlines():
        digest, path = line.split(maxsplit=1)
        folder, rest = path.split("/", 1)
        by_folder.setdefault(folder, {})[rest] = digest
    return by_folder


def reference_sha256(folder: str) -> dict[str, str]:
    """The pinned sha256 of every file of the reference copy of ``folder`` (``"Set5"``), keyed by
    the path inside it (``"HR/baby.png"``); empty for a set without a manifest."""
    return dict(_manifest().get(folder, {}))
