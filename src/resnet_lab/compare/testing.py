"""The tests every verdict is made of, written once: Welch's t and its equivalence test (TOST) from each group's
mean, variance and count, vectorised over any leading shape; the map from a p-value to the standard normal
scale that the group-sequential boundaries use; and Holm's step-down procedure.

- **Welch's t** (Welch 1947): diff = mean_a - mean_b, se^2 = var_a/n_a + var_b/n_b (+ an extra variance, e.g. a
  test set's sampling variance, as one more Welch-Satterthwaite component with its own degrees of freedom),
  two-sided p = 2 T_df(-|diff| / se).
- **TOST** (Schuirmann 1987): H0 |diff| >= min_effect is rejected when both one-sided Welch tests against
  -min_effect and +min_effect reject; its p is the larger of the two one-sided p-values.
- **No spread**: when both groups' values are all identical there is nothing to test against: p = 1 both ways
  and ``no_spread`` is true ("cannot be tested: every seed gave the same value"), never p = 0.
- **To the boundary scale**: a look's Welch statistic is carried to the standard normal scale through its
  p-value, z = Phi^-1(1 - p/2) (two-sided) or Phi^-1(1 - p) (one-sided), so that each look has exactly the
  null distribution the boundaries assume marginally (Jennison & Turnbull 2000, sec. 3.8 and 11.5).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np


class Welch(NamedTuple):
    """Welch's t and TOST, element-wise over the inputs' shape."""

    diff: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p: np.ndarray  # two-sided, H0: equal means
    p_equal: np.ndarray  # TOST, H0: |diff| >= min_effect (1 where min_effect is 0)
    no_spread: np.ndarray  # both groups' values all identical: cannot be tested


def welch_summary(mean_a, var_a, n_a, mean_b, var_b, n_b, min_effect: float = 0.0, extra_var=0.0,
                  extra_df=math.inf) -> Welch:
    """Welch's t and TOST from summary statistics (sample variances with ddof=1)."""
    from scipy.special import stdtr

    mean_a, var_a, n_a, mean_b, var_b, n_b, extra_var, extra_df = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (mean_a, var_a, n_a, mean_b, var_b, n_b, extra_var, extra_df)))
    va, vb = var_a / n_a, var_b / n_b
    se2 = va + vb + extra_var
    diff = mean_a - mean_b
    no_spread = se2 <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        extra_part = np.where(np.isfinite(extra_df), extra_var ** 2 / extra_df, 0)
        parts = va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1) + extra_part
        df = np.where(parts > 0, se2 ** 2 / np.where(parts > 0, parts, 1), math.inf)
        se = np.sqrt(np.where(no_spread, 1.0, se2))
        p = 2 * stdtr(df, -np.abs(diff) / se)
        if min_effect > 0:  # the larger one-sided p is the side nearer the estimate
            p_equal = stdtr(df, -(min_effect - np.abs(diff)) / se)
        else:
            p_equal = np.ones_like(diff)
    return Welch(diff, np.where(no_spread, 0.0, se), np.where(no_spread, math.inf, df), np.where(no_spread, 1.0, p),
                 np.where(no_spread, 1.0, p_equal), no_spread)


def welch_values(a, b, min_effect: float = 0.0, extra_var: float = 0.0, extra_df: float = math.inf) -> Welch:
    """Welch's t and TOST on two groups' values (the last axis)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return welch_summary(a.mean(-1), a.var(-1, ddof=1), a.shape[-1], b.mean(-1), b.var(-1, ddof=1), b.shape[-1],
                         min_effect, extra_var, extra_df)


def t_quantile(q, df):
    """Student's t quantile, element-wise; the normal one where df is infinite."""
    from scipy.special import stdtrit

    return stdtrit(np.asarray(df, float), np.asarray(q, float))


def z_of(p, sided: int = 2):
    """A p-value on the standard normal scale: the z whose ``sided`` tail has probability p."""
    from scipy.special import ndtri

    p = np.clip(np.asarray(p, float), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return -ndtri(p / 2 if sided == 2 else p)


def p_of(z, sided: int = 2):
    """The inverse of ``z_of``."""
    from scipy.special import ndtr

    tail = ndtr(-np.asarray(z, float))
    return 2 * tail if sided == 2 else tail


def holm(scores: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (Holm 1979): sorted ascending, the k-th smallest of m times (m - k + 1), made
    non-decreasing. On p-values a hypothesis is rejected where the result is at most the level; on weights (the
    smallest share of the level at which a hypothesis was rejected) where it is at most 1. Not capped."""
    scores = np.asarray(scores, float)
    m = len(scores)
    order = np.argsort(scores, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scores[order] * (m - np.arange(m)))
    return adjusted
