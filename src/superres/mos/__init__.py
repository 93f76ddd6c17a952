"""superres.mos: blind mean-opinion-score studies in the protocol of the SRGAN paper.

``superres mos create`` renders every image of a benchmark set with every model plus the HR and
bicubic anchors into one SQLite file (:mod:`superres.mos.study`); ``superres mos serve`` lets
raters score them 1-5 in a browser (:mod:`superres.mos.server`, needs the ``mos`` extra:
FastAPI and uvicorn); ``superres mos results`` reports the MOS per method with Student-t 95%
confidence intervals (:mod:`superres.mos.results`, :mod:`superres.mos.stats`).

The web server is imported from :mod:`superres.mos.server` only, so the rest works without
FastAPI installed.
"""

from superres.mos.results import (
    MethodResult,
    StudyResults,
    compute_results,
    format_markdown,
    write_results,
)
from superres.mos.stats import CI_METHOD, MeanCI, mean_ci, t_quantile
from superres.mos.study import (
    BICUBIC_METHOD,
    HR_METHOD,
    StudyError,
    StudyExistsError,
    StudyInfo,
    StudyNotFoundError,
    create_study,
    open_study,
    rater_order,
)

__all__ = [
    "BICUBIC_METHOD",
    "CI_METHOD",
    "HR_METHOD",
    "MeanCI",
    "MethodResult",
    "StudyError",
    "StudyExistsError",
    "StudyInfo",
    "StudyNotFoundError",
    "StudyResults",
    "compute_results",
    "create_study",
    "format_markdown",
    "mean_ci",
    "open_study",
    "rater_order",
    "t_quantile",
    "write_results",
]
