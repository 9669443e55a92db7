"""Statistics of repeated runs: mean, sample standard deviation and a Student's t interval of the mean.

For n values x (NaN and missing ones left out): mean = sum(x) / n, sd = sqrt(sum((x - mean)^2) / (n - 1)),
and the 95% interval is mean ± t(0.975, n - 1) · sd / sqrt(n), t being Student's t quantile.
One value has no sd and no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Optional

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """What a group's values say about their mean; None where too few values say it."""

    n: int
    mean: Optional[float] = None
    sd: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None


def summarize(values: Iterable[Optional[float]], confidence: float = CONFIDENCE) -> Summary:
    """n, mean, sample sd (ddof=1) and the t interval of the mean; NaN and None are left out."""
    xs = _numbers(values)
    n = len(xs)
    if n == 0:
        return Summary(0)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half_width = t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half_width, mean + half_width)


def mean_of(values: Iterable[Optional[float]]) -> Optional[float]:
    """The mean of the values that are numbers; None if there are none."""
    xs = _numbers(values)
    return math.fsum(xs) / len(xs) if xs else None


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """Student's t quantile, e.g. t(0.975, 2) = 4.3027."""
    from scipy.stats import t  # imported here: only intervals need scipy

    return float(t.ppf(probability, degrees_of_freedom))


def _numbers(values: Iterable[Optional[float]]) -> List[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]
