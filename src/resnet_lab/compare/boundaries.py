"""Exact group-sequential boundaries: how high a look's statistic must be, given every earlier look.

A hypothesis looked at K times, at information fractions t_1 < ... < t_K <= 1, with a spending function
alpha(t) (Lan & DeMets, Biometrika 1983), is rejected at the first look k whose standard normal statistic
Z_k crosses c_k. The boundaries are chosen so that, under the null, the chance of crossing *first* at look k is
exactly alpha(t_k) - alpha(t_{k-1}):

    P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1})    (two-sided)

and the same with Z in place of |Z| for a one-sided test. Successive looks at a growing sample are correlated,
corr(Z_j, Z_k) = sqrt(t_j / t_k) (the score S_k = Z_k sqrt(t_k) has independent increments), so these chances
need the joint distribution of the looks: the recursive numerical integration of Armitage, McPherson & Rowe
(JRSS A 1969), carried out as in Jennison & Turnbull, *Group Sequential Methods with Applications to Clinical
Trials* (2000), ch. 19: the sub-density of Z_k on the continuation region is carried from look to look on a grid
(their grid of 6r - 1 points, denser near the centre, with Simpson's rule), and each c_k is the root of a
one-dimensional equation. With their r = 16 the boundaries agree with published ones to four decimals.

A hypothesis with weight w (its share of the level under a multiple-testing graph) spends w * alpha(t).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

SPENDINGS = ("obrien_fleming", "pocock", "kim_demets")
GRID_R = 16  # Jennison & Turnbull's grid size parameter


def spending_function(name: str, level: float) -> Callable[[float], float]:
    """alpha(t): the share of ``level`` spent by information fraction t, rising from 0 at t = 0 to ``level`` at 1.

    - ``obrien_fleming``: 2 - 2 Phi(z_{1 - level/2} / sqrt(t)) (Lan & DeMets 1983), almost nothing early;
    - ``pocock``: level * ln(1 + (e - 1) t) (Lan & DeMets 1983), nearly equal boundaries at every look;
    - ``kim_demets``: level * t^2 (Kim & DeMets 1987, rho = 2), between the two.
    """
    from scipy.special import ndtr, ndtri

    if name not in SPENDINGS:
        raise ValueError(f"spending is one of {', '.join(SPENDINGS)}; received {name!r}")
    z = -float(ndtri(level / 2))

    def spent(t: float) -> float:
        t = min(max(float(t), 0.0), 1.0)
        if t == 0:
            return 0.0
        if name == "pocock":
            return level * math.log(1 + (math.e - 1) * t)
        if name == "kim_demets":
            return level * t * t
        return float(2 * ndtr(-z / math.sqrt(t)))

    return spent


def boundaries(fractions: Sequence[float], spent: Sequence[float], sided: int = 2) -> np.ndarray:
    """The boundaries c_1..c_K on the standard normal scale for looks at ``fractions`` (increasing, in (0, 1])
    where the level spent by look k is ``spent[k]`` (cumulative, non-decreasing). ``sided``: 2 rejects when
    |Z_k| >= c_k, 1 when Z_k >= c_k. A look that spends nothing has c_k = inf."""
    from scipy.optimize import brentq
    from scipy.special import ndtr, ndtri

    if sided not in (1, 2):
        raise ValueError(f"sided is 1 or 2; received {sided!r}")
    t = np.asarray(fractions, float)
    cumulative = np.asarray(spent, float)
    if t.ndim != 1 or len(t) != len(cumulative) or len(t) == 0:
        raise ValueError("one fraction and one cumulative level spent per look")
    if np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-12:
        raise ValueError(f"information fractions must increase within (0, 1]; received {list(t)}")
    shares = np.diff(np.concatenate([[0.0], cumulative]))
    c = np.full(len(t), math.inf)
    tail = 2.0 if sided == 2 else 1.0

    share = shares[0]
    if share > 0:
        c[0] = -float(ndtri(min(share / tail, 0.5)))
    z, weights = _grid(-c[0] if sided == 2 else -math.inf, c[0])
    density = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    for k in range(1, len(t)):
        root_before, root_now = math.sqrt(t[k - 1]), math.sqrt(t[k])
        step = math.sqrt(t[k] - t[k - 1])
        mass = weights * density  # the sub-density of Z_{k-1} on the continuation region, times quadrature weights
        shifted = z * root_before  # the score at look k-1

        def crossing(bound: float) -> float:
            upper = ndtr((shifted - bound * root_now) / step)
            lower = ndtr((-bound * root_now - shifted) / step) if sided == 2 else 0.0
            return float(mass @ (upper + lower))

        share = shares[k]
        if share > 0:
            if crossing(0.0 if sided == 2 else -8.0) <= share:  # more to spend than is left: reject everything
                c[k] = 0.0 if sided == 2 else -8.0
            else:
                target = math.log(share)
                c[k] = brentq(lambda b: math.log(max(crossing(b), 1e-320)) - target, 0.0 if sided == 2 else -8.0,
                              40.0, xtol=1e-10)
        z_next, w_next = _grid(-c[k] if sided == 2 else -math.inf, c[k])
        kernel = np.exp(-0.5 * ((z_next[:, None] * root_now - shifted[None, :]) / step) ** 2)
        density = kernel @ mass * (root_now / (step * math.sqrt(2 * math.pi)))
        z, weights = z_next, w_next
    return c


def _grid(low: float, high: float, r: int = GRID_R) -> Tuple[np.ndarray, np.ndarray]:
    """Jennison & Turnbull's grid (mean 0, sd 1) cut to (low, high), with Simpson's weights on it and the
    midpoints between its points."""
    i = np.arange(1, 6 * r)
    x = np.where(i < r, -3 - 4 * np.log(r / np.maximum(i, 1)),
                 np.where(i <= 5 * r, -3 + 3 * (i - r) / (2 * r), 3 + 4 * np.log(r / np.maximum(6 * r - i, 1))))
    inside = x[(x > low) & (x < high)]
    points = np.concatenate([[max(low, x[0])], inside, [min(high, x[-1])]])
    points = np.unique(points)
    if len(points) < 2:
        points = np.array([low, high]) if math.isfinite(low) and math.isfinite(high) else np.array([x[0], x[-1]])
    gaps = np.diff(points)
    full = np.empty(2 * len(points) - 1)
    full[0::2], full[1::2] = points, points[:-1] + gaps / 2
    weights = np.zeros_like(full)
    weights[0:-1:2] += gaps / 6
    weights[1::2] += 4 * gaps / 6
    weights[2::2] += gaps / 6
    return full, weights


@lru_cache(maxsize=4096)
def boundary_table(fractions: Tuple[float, ...], spending: str, level: float, weight: float, sided: int) -> np.ndarray:
    """The boundaries of a hypothesis with ``weight`` that spends weight * alpha(t), at ``fractions``; cached:
    a sweep asks for the same few again and again."""
    spent = spending_function(spending, level)
    table = boundaries(fractions, [min(1.0, weight * spent(f)) for f in fractions], sided)
    table.setflags(write=False)
    return table


def weights_for(pairs: int) -> Dict[int, float]:
    """Holm's weights: with v hypotheses left, each has weight 1/v."""
    return {v: 1.0 / v for v in range(1, pairs + 1)}
