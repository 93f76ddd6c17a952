"""Mean opinion scores with Student-t confidence intervals (quantiles from SciPy).

The interval of a method is the classical one for a mean, taken over all of its ratings as if
they were independent draws::

    MOS ± t(1 - (1 - confidence) / 2, n - 1) · s / sqrt(n)

with ``s`` the sample standard deviation (``n - 1`` in the denominator), its ends clipped to the
rating scale (a mean of 1-to-5 scores cannot lie outside 1..5). Ratings of one rater, or
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
    "s the sample standard deviation (ddof 1), n the number of ratings, the ends clipped to "
    "the 1..5 scale (Student t over the "
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
        bounds: the range the values come from (``(1, 5)`` for MOS): :attr:`low` and
            :attr:`high` stay inside it. None: unbounded.
    """

    n: int
    mean: float
    std: float
    half_width: float
    confidence: float
    bounds: tuple[float, float] | None = None

    @property
    def low(self) -> float:
        low = self.mean - self.half_width
        return low if self.bounds is None or math.isnan(low) else max(low, self.bounds[0])

    @property
    def high(self) -> float:
        high = self.mean + self.half_width
        return high if self.bounds is None or math.isnan(high) else min(high, self.bounds[1])


def mean_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    *,
    bounds: tuple[float, float] | None = None,
) -> MeanCI:
    """The mean of ``values`` and its Student-t confidence interval (see the module docstring),
    its ends kept inside ``bounds`` when given."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(values)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, confidence, bounds)
    mean = math.fsum(values) / n
    if n == 1:
        return MeanCI(1, mean, math.nan, math.nan, confidence, bounds)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    t = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1)
    return MeanCI(n, mean, std, t * std / math.sqrt(n), confidence, bounds)
