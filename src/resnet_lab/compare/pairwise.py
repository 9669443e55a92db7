"""Pairwise tests between groups of repeated runs, valid at three seeds a group.

For groups A and B with per-seed values a (n_a of them) and b (n_b), on one metric:

- **Difference of means** with Welch's t: se² = s_a²/n_a + s_b²/n_b, degrees of freedom by
  Welch-Satterthwaite, the 95% interval diff ± t(0.975, df)·se and a two-sided p-value. Its calibration
  holds at n = 3 for normal per-seed values; a percentile bootstrap over three seeds does not.
- **Two scopes.** "On this test set" counts the seed variance only: every run is scored on the same
  images. "On new data" adds the test-sampling variance of the paired difference, var_i(d_i)/N, where d_i
  is A's share of seeds right on image i minus B's (from the runs' per-example outcomes), as one more
  Welch-Satterthwaite component with N - 1 degrees of freedom.
- **Holm's step-down correction** of the p-values over all pairs (statsmodels ``multipletests``).
- **P(A > B)**, Bouthillier et al. (MLSys 2021): the probability that a run of A beats a run of B.
  Under the normal model of one run against another it is Φ(diff / σ), σ² = s_a² + s_b² (plus the
  test-sampling variance of one run's difference on new data); its interval maps the difference's
  interval through the same function. (The share of pairs a run of A won is a coarse estimate at three
  seeds: nine pairs, and no interval.)
- **Equivalence (TOST)**: two one-sided Welch tests against ±margin, Holm-adjusted over the pairs; both
  rejecting means the difference lies inside the margin.
- **Seeds needed**: the seeds a group that a two-sided Welch test at level 5% needs to detect a
  difference of the margin with power 0.8 at the observed seed sd (statsmodels ``TTestIndPower``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

LEVEL = 0.05  # two-sided tests, family-wise over the pairs (Holm)
POWER = 0.8  # for the seeds-needed advice
MAX_SEEDS = 1000  # beyond this the advice says "more than"
OUTCOME_METRIC = "test_accuracy"  # the mean of a run's per-example outcomes: the metric with a new-data scope


@dataclass(frozen=True)
class Estimate:
    """A difference of means in one scope, its test and the probability of outperforming."""

    diff: float
    ci_low: float
    ci_high: float
    se: float
    df: float
    p: float  # two-sided, unadjusted
    p_holm: float
    p_equal: float  # TOST against ±margin, unadjusted
    p_equal_holm: float
    prob_a_beats_b: float
    prob_low: float
    prob_high: float


@dataclass(frozen=True)
class Pair:
    """Groups A and B compared on ``metric``: in both scopes where outcomes allow, else on this test set only."""

    a: str
    b: str
    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    test_set: Estimate
    new_data: Optional[Estimate]
    new_data_note: Optional[str]  # why there is no new-data estimate
    test_images: int  # per-example outcomes paired (0: none)
    per_image_var: float  # var_i(d_i): the new-data variance is this over the test images
    sd_pooled: float  # the seeds' spread, for the seeds a margin needs


@dataclass(frozen=True)
class Group:
    """What the tests need of a group: its name, per-seed values and (optionally) per-example outcomes."""

    name: str
    values: Sequence[float]
    outcomes: Optional[np.ndarray] = None  # (seeds, images) booleans, right or wrong; None: not logged
    test_split: Optional[str] = None  # the identity of the test split the outcomes are on


def welch(a: np.ndarray, b: np.ndarray, extra_var: float = 0.0, extra_df: float = math.inf,
          margin: float = 0.0) -> Tuple[float, float, float, float, float, float, float]:
    """diff, se, df, ci_low, ci_high, p (two-sided), p of TOST against ±margin (1.0 without a margin)."""
    from scipy.stats import t

    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se2 = va + vb + extra_var
    diff = float(np.mean(a) - np.mean(b))
    if se2 <= 0:  # identical values in both groups: no spread to test against
        p = 1.0 if diff == 0 else 0.0
        inside = abs(diff) < margin
        return diff, 0.0, math.inf, diff, diff, p, 0.0 if inside else 1.0
    parts = [va ** 2 / (len(a) - 1), vb ** 2 / (len(b) - 1)]
    if extra_var > 0 and math.isfinite(extra_df):
        parts.append(extra_var ** 2 / extra_df)
    df = se2 ** 2 / sum(parts) if sum(parts) > 0 else math.inf
    se = math.sqrt(se2)
    half = float(t.ppf(1 - LEVEL / 2, df)) * se
    p = float(2 * t.sf(abs(diff) / se, df))
    p_equal = 1.0
    if margin > 0:  # H0: diff <= -margin or diff >= +margin; both one-sided tests must reject
        p_equal = float(max(t.sf((diff + margin) / se, df), t.cdf((diff - margin) / se, df)))
    return diff, se, df, diff - half, diff + half, p, p_equal


def paired_sampling_variance(outcomes_a: np.ndarray, outcomes_b: np.ndarray) -> Tuple[float, float]:
    """The variance a new test set of the same size adds to the difference of mean accuracies, var_i(d_i)/N
    with d_i = A's share of seeds right on image i minus B's; and the same for one run against one run."""
    d = outcomes_a.mean(axis=0) - outcomes_b.mean(axis=0)
    images = d.shape[0]
    per_run = (outcomes_a.astype(float)[:, None, :] - outcomes_b.astype(float)[None, :, :]).var(axis=-1, ddof=1)
    return float(d.var(ddof=1) / images), float(per_run.mean() / images)


def seeds_needed(sd: float, effect: float) -> Optional[int]:
    """Seeds a group for a two-sided 5% test to find ``effect`` with power 0.8 at seed sd ``sd``: the
    smallest n whose power (statsmodels ``TTestIndPower``) reaches it; MAX_SEEDS + 1 for "more than"."""
    from statsmodels.stats.power import TTestIndPower

    if not effect > 0 or not math.isfinite(sd):
        return None
    if sd <= 0:
        return 2
    seeds = np.arange(2, MAX_SEEDS + 1)
    power = TTestIndPower().power(effect_size=effect / sd, nobs1=seeds, alpha=LEVEL, ratio=1.0)
    enough = np.flatnonzero(power >= POWER)
    return int(seeds[enough[0]]) if enough.size else MAX_SEEDS + 1


def seeds_for_equivalence(sd: float, margin: float, fixed_var: float = 0.0) -> Optional[int]:
    """Seeds a group for the equivalence test to show a true difference of 0 inside ±margin with power
    0.8, in the normal approximation: margin = (z(0.95) + z(0.9)) · sqrt(2 sd²/n + fixed_var). None when no
    number of seeds does it (the fixed part, a test set's sampling variance, is too large alone)."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - LEVEL) + norm.ppf(1 - (1 - POWER) / 2))
    room = (margin / z) ** 2 - fixed_var
    if room <= 0:
        return None
    return int(min(max(2, math.ceil(2 * sd ** 2 / room)), MAX_SEEDS + 1))


def images_needed(margin: float, per_image_var: float) -> int:
    """Test images at which a test set's sampling variance alone (per_image_var / images) leaves room to
    tell ±margin apart, as in ``seeds_for_equivalence`` with unlimited seeds."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - LEVEL) + norm.ppf(1 - (1 - POWER) / 2))
    return int(math.ceil(per_image_var * (z / margin) ** 2))


def compare_pairs(groups: Sequence[Group], metric: str, margin: float) -> List[Pair]:
    """Every pair of groups with two or more values each, in the order given; p-values Holm-adjusted."""
    from statsmodels.stats.multitest import multipletests

    usable = [g for g in groups if len(_finite(g.values)) >= 2]
    pairs: List[Pair] = []
    for ga, gb in itertools.combinations(usable, 2):
        a, b = _finite(ga.values), _finite(gb.values)
        test_set = _estimate(a, b, margin)
        new_data, note, images, per_image = None, None, 0, 0.0
        if ga.outcomes is None or gb.outcomes is None:
            note = "no per-example outcomes logged"
        elif ga.test_split != gb.test_split or ga.outcomes.shape[1] != gb.outcomes.shape[1]:
            note = f"scored on different test splits ({ga.test_split} and {gb.test_split})"
        else:
            extra, per_run = paired_sampling_variance(ga.outcomes, gb.outcomes)
            images, per_image = ga.outcomes.shape[1], extra * ga.outcomes.shape[1]
            new_data = _estimate(a, b, margin, extra, images - 1, per_run)
        sd = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
        pairs.append(Pair(ga.name, gb.name, metric, len(a), len(b), float(a.mean()), float(b.mean()), test_set,
                          new_data, note, images, per_image, sd))
    if not pairs:
        return []
    for scope in ("test_set", "new_data"):
        held = [i for i, p in enumerate(pairs) if getattr(p, scope) is not None]
        if not held:
            continue
        adjusted = multipletests([getattr(pairs[i], scope).p for i in held], method="holm")[1]
        equal = multipletests([getattr(pairs[i], scope).p_equal for i in held], method="holm")[1]
        for i, p_holm, p_equal in zip(held, adjusted, equal):
            estimate = replace(getattr(pairs[i], scope), p_holm=float(p_holm), p_equal_holm=float(p_equal))
            pairs[i] = replace(pairs[i], **{scope: estimate})
    return pairs


def _estimate(a: np.ndarray, b: np.ndarray, margin: float, extra_var: float = 0.0, extra_df: float = math.inf,
              extra_run_var: float = 0.0) -> Estimate:
    diff, se, df, low, high, p, p_equal = welch(a, b, extra_var, extra_df, margin)
    sigma = math.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1) + extra_run_var)
    prob, prob_low, prob_high = (_phi(x / sigma) if sigma > 0 else 0.5 + 0.5 * float(np.sign(x))
                                 for x in (diff, low, high))
    return Estimate(diff, low, high, se, df, p, p, p_equal, p_equal, prob, prob_low, prob_high)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _finite(values: Sequence[Optional[float]]) -> np.ndarray:
    return np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def scope_of(pair: Pair, scope: str) -> Estimate:
    """The estimate in ``scope`` ("test_set" or "new_data"), falling back to this test set where outcomes lack."""
    return pair.new_data if scope == "new_data" and pair.new_data is not None else pair.test_set
