"""Mean opinion scores with Student-t confidence intervals (quantiles from SciPy).

The interval of a method is the classical one for a mean, taken over all of its ratings as if
they were independent draws::

    MOS ± t(1 - (1 - confidence) / 2, n - 1) · s / sqrt(n)

with ``s`` the sample standard deviation (``n - 1`` in the denominator). Ratings of one rater, or
of one image, are correlated in reality, so these intervals are somewhat optimistic; they are the
intervals MOS tables in the SR literature report, and comparable with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

__all__ = ["CI_METHOD", "MeanCI", "mean_ci", "t_quantile"]

CI_METHOD = (
    "MOS = mean of all ratings of a method; 95% CI = MOS ± t(0.975, n-1) · s / sqrt(n), "
    "s the sample standard deviation (ddof 1), n the number of ratings (Student t over the "
    "ratings, treated as independent: rater and image effects are ignored, so the interval is "
    "optimistic)"
)


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile: the ``t`` whose cumulative probability is ``p`` (SciPy's ``ppf``)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    return float(student_t.ppf(p, df))


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with its confidence interval.

    Attributes:
        n: number of values.
        mean: their mean (NaN for ``n = 0``).
        std: sample standard deviation, ``n - 1`` in the denominator (NaN for ``n < 2``).
        half_width: ``t(1 - alpha/2, n - 1) * std / sqrt(n)`` (NaN for ``n < 2``).
        confidence: e.g. 0.95.
    """

    n: int
    mean: float
    std: float
    half_width: float
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """The mean of ``values`` and its Student-t confidence interval (see the module docstring)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(values)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, confidence)
    mean = math.fsum(values) / n
    if n == 1:
        return MeanCI(1, mean, math.nan, math.nan, confidence)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    t = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1)
    return MeanCI(n, mean, std, t * std / math.sqrt(n), confidence)
