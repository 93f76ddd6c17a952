"""Mean opinion scores with Student-t confidence intervals, in pure Python (no SciPy).

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

__all__ = ["CI_METHOD", "MeanCI", "mean_ci", "t_cdf", "t_quantile"]

CI_METHOD = (
    "MOS = mean of all ratings of a method; 95% CI = MOS ± t(0.975, n-1) · s / sqrt(n), "
    "s the sample standard deviation (ddof 1), n the number of ratings (Student t over the "
    "ratings, treated as independent: rater and image effects are ignored, so the interval is "
    "optimistic)"
)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)`` for ``a, b > 0``, ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """The CDF of Student's t distribution with ``df`` > 0 degrees of freedom at ``t``."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (e.g. ``p = 0.975``).

    Found by bisection on :func:`t_cdf` to about 1e-12; ``t_quantile(0.975, 1) = 12.7062...``,
    ``t_quantile(0.975, 1e9) = 1.95996...`` (the normal quantile).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 2.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


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
