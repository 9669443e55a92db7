"""Pairwise tests between groups of repeated runs, valid at three seeds a group.

For groups A and B with per-seed values a (n_a of them) and b (n_b), on one metric:

- **Difference of means** with Welch's t: se² = s_a²/n_a + s_b²/n_b, degrees of freedom by
  Welch-Satterthwaite, the 95% interval diff ± t(0.975, df)·se and a two-sided p-value. Its calibration
  holds at n = 3 for normal per-seed values; a percentile bootstrap over three seeds does not.
- **Two scopes.** "On this test set" counts the seed variance only: every run is scored on the same
  images. "On new data" adds the variance a new test set of N images would add, var_x(mu_A(x) - mu_B(x))/N,
  as one more Welch-Satterthwaite component with N - 1 degrees of freedom. It is estimated from the runs'
  per-example outcomes: var_i(d_i), d_i being A's share of seeds right on image i minus B's, less the seeds'
  own noise on each image, mean_i(v_Ai/n_A + v_Bi/n_B) (v_Ai: the variance over A's seeds of being right on
  image i), which s²/n already counts (the diagonal of a run's accuracy variance); counted twice, the interval
  was too wide and P(A > B) too close to 0.5.
- **Holm's step-down correction** (``testing.holm``) over all pairs of a verdict, one family per scope: on new
  data, pairs without outcomes join it with their test-set p-values.
- **P(A > B)**, Bouthillier et al. (MLSys 2021): the probability that a run of A beats a run of B.
  Under the normal model of one run against another it is Φ(diff / σ), σ² = s_a² + s_b² (plus the
  test-sampling variance of one run's difference on new data); its interval maps the difference's
  interval through the same function. (The share of pairs a run of A won is a coarse estimate at three
  seeds: nine pairs, and no interval.)
- **Equivalence (TOST)**: two one-sided Welch tests against ±min_effect, Holm-adjusted over the pairs; both
  rejecting means the difference lies inside the margin; the interval that goes with it is the 90% one
  (Schuirmann 1987).
- **No spread**: two groups whose seeds all gave the same value cannot be tested (``testing.py``).
- **Seeds needed** for an unresolved pair: ``forecast.seeds_to_resolve``, at the level Holm gives it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from resnet_lab.compare.testing import holm, t_quantile, welch_values

LEVEL = 0.05  # two-sided tests, family-wise over the pairs (Holm)
EQUAL_CONFIDENCE = 1 - 2 * LEVEL  # the interval that goes with TOST at LEVEL
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
    p_equal: float  # TOST against ±min_effect, unadjusted
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
    per_image_var: float  # var_x(mu_A(x) - mu_B(x)): the new-data variance is this over the test images
    sd_pooled: float  # the seeds' spread
    var_a: float = math.nan  # each group's variance over its seeds, for the seeds a verdict needs
    var_b: float = math.nan
    fallback: Optional[Estimate] = None  # no new-data estimate: the test-set one, Holm-adjusted in the new-data family


@dataclass(frozen=True)
class Group:
    """What the tests need of a group: its name, per-seed values and (optionally) per-example outcomes."""

    name: str
    values: Sequence[float]
    outcomes: Optional[np.ndarray] = None  # (seeds, images) booleans, right or wrong; None: not logged
    test_split: Optional[str] = None  # the identity of the test split the outcomes are on


def welch(a: np.ndarray, b: np.ndarray, extra_var: float = 0.0, extra_df: float = math.inf,
          min_effect: float = 0.0, confidence: float = 1 - LEVEL
          ) -> Tuple[float, float, float, float, float, float, float]:
    """diff, se, df, ci_low, ci_high, p (two-sided), p of TOST against ±min_effect (1.0 without one), by
    ``testing.welch_summary``; no spread in both groups gives p = 1 and a zero-width interval."""
    test = welch_values(a, b, min_effect, extra_var, extra_df)
    diff, se, df = float(test.diff), float(test.se), float(test.df)
    half = float(t_quantile((1 + confidence) / 2, df)) * se if se > 0 else 0.0
    return diff, se, df, diff - half, diff + half, float(test.p), float(test.p_equal)


def paired_sampling_variance(outcomes_a: np.ndarray, outcomes_b: np.ndarray) -> float:
    """The variance a new test set of the same size adds to the difference of mean accuracies (and to one run
    against one run): var_x(mu_A(x) - mu_B(x)) / N, estimated as var_i(d_i) less the seeds' noise on each image
    that the seed variance already holds, mean_i(v_Ai / n_A + v_Bi / n_B), over N; never below 0."""
    a, b = outcomes_a.astype(float), outcomes_b.astype(float)
    d = a.mean(axis=0) - b.mean(axis=0)
    images = d.shape[0]
    seed_noise = a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0]
    return float(max(d.var(ddof=1) - seed_noise.mean(), 0.0) / images)


def images_needed(min_effect: float, per_image_var: float, power: float = 0.8) -> int:
    """Test images at which a test set's sampling variance alone (per_image_var / images) leaves room to tell
    ±min_effect apart with this power (equivalence at a zero difference, normal approximation)."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - LEVEL) + norm.ppf(1 - (1 - power) / 2))
    return int(math.ceil(per_image_var * (z / min_effect) ** 2))


def compare_pairs(groups: Sequence[Group], metric: str, min_effect: float) -> List[Pair]:
    """Every pair of groups with two or more values each, in the order given; p-values Holm-adjusted, one family
    per scope."""
    usable = [g for g in groups if len(_finite(g.values)) >= 2]
    pairs: List[Pair] = []
    for ga, gb in itertools.combinations(usable, 2):
        a, b = _finite(ga.values), _finite(gb.values)
        test_set = _estimate(a, b, min_effect)
        new_data, note, images, per_image = None, None, 0, 0.0
        if ga.outcomes is None or gb.outcomes is None:
            note = "no per-example outcomes logged"
        elif ga.test_split != gb.test_split or ga.outcomes.shape[1] != gb.outcomes.shape[1]:
            note = f"scored on different test splits ({ga.test_split} and {gb.test_split})"
        else:
            extra = paired_sampling_variance(ga.outcomes, gb.outcomes)
            images, per_image = ga.outcomes.shape[1], extra * ga.outcomes.shape[1]
            new_data = _estimate(a, b, min_effect, extra, images - 1)
        var_a, var_b = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
        pairs.append(Pair(ga.name, gb.name, metric, len(a), len(b), float(a.mean()), float(b.mean()), test_set,
                          new_data, note, images, per_image, math.sqrt((var_a + var_b) / 2), var_a, var_b))
    if not pairs:
        return []
    tested = [p.test_set for p in pairs]
    tested = _adjusted(tested)
    pairs = [replace(p, test_set=e) for p, e in zip(pairs, tested)]
    if any(p.new_data is not None for p in pairs):
        family = _adjusted([p.new_data if p.new_data is not None else p.test_set for p in pairs])
        pairs = [replace(p, new_data=e) if p.new_data is not None else replace(p, fallback=e)
                 for p, e in zip(pairs, family)]
    return pairs


def _adjusted(estimates: Sequence[Estimate]) -> List[Estimate]:
    """The estimates with their p-values Holm-adjusted as one family, capped at 1."""
    different = np.minimum(holm([e.p for e in estimates]), 1.0)
    equal = np.minimum(holm([e.p_equal for e in estimates]), 1.0)
    return [replace(e, p_holm=float(d), p_equal_holm=float(q)) for e, d, q in zip(estimates, different, equal)]


def _estimate(a: np.ndarray, b: np.ndarray, min_effect: float, extra_var: float = 0.0,
              extra_df: float = math.inf) -> Estimate:
    diff, se, df, low, high, p, p_equal = welch(a, b, extra_var, extra_df, min_effect)
    sigma = math.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1) + extra_var)
    prob, prob_low, prob_high = (_phi(x / sigma) if sigma > 0 else 0.5 + 0.5 * float(np.sign(x))
                                 for x in (diff, low, high))
    return Estimate(diff, low, high, se, df, p, p, p_equal, p_equal, prob, prob_low, prob_high)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _finite(values: Sequence[Optional[float]]) -> np.ndarray:
    return np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def scope_of(pair: Pair, scope: str) -> Estimate:
    """The estimate in ``scope`` ("test_set" or "new_data"), falling back to this test set where outcomes lack
    (Holm-adjusted with the new-data family)."""
    if scope != "new_data":
        return pair.test_set
    return pair.new_data or pair.fallback or pair.test_set
