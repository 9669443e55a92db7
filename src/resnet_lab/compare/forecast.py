"""What is left to run, estimated once: the sweeper's own rule run forward from the seeds so far.

**A sweep that looks after every round** (``forecast``). Plausible truths are drawn from the seeds so far (each
group's mean at its estimate, the seeds' pooled sd; which groups truly tie drawn from its posterior probability:
``_draw_truths``), each truth's future seeds are drawn, and the sweeper's decision rule (``rule.BatchRule``, the
same decisions as ``Sequential.decide``) runs on the seeds so far followed by the drawn ones, up to the seed
budget. This is conditional power at the current estimates (Lan & Wittes 1988; Jennison & Turnbull 2000, ch. 10)
for the whole sweep rather than one test, averaged over the ties the data allow: the share of futures in which
every pair is resolved within ``max_seeds`` is the chance of a full verdict, and among them the median and 80th
percentile of the runs still to train (and, at a pace, the minutes) say what it will take. Where the chance is
low it says so, and what would make a full verdict reachable: a larger seed budget or a wider margin, each with
its own chance. ``benchmarks/sequential_design.py`` checks it against what simulated sweeps then did.

**A plain sweep** (``seeds_to_resolve``): the seeds a group at which a fixed-sample test of one pair would
resolve it with probability 0.8, averaging over where its difference may truly lie given the seeds so far
(predictive power: Spiegelhalter, Freedman & Blackburn 1986), at the level Holm gives that pair in its family
(the level over the pairs not yet resolved there), either way: "different" or "practically equal".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from resnet_lab.compare.sequential import Design

FUTURES = 1000  # futures simulated: the chance's Monte Carlo sd is at most 0.016
LOW_CHANCE = 0.5  # below it, the forecast says what would make a full verdict reachable
POWER = 0.8  # a plain sweep's advice: the seeds at which a pair is resolved with this probability
MAX_SEEDS = 1000  # beyond this the plain advice says "more than"
QUANTILE = 0.8


@dataclass(frozen=True)
class Forecast:
    """The chance that every pair is resolved within the budget and, if so, what it takes."""

    chance: float  # share of futures with every pair resolved within max_seeds
    runs_median: Optional[int]  # more runs, among those futures (None when none)
    runs_q80: Optional[int]
    minutes_median: Optional[float]  # at ``seconds_per_run`` (None without one)
    minutes_q80: Optional[float]
    more_seeds: Mapping[str, int]  # per group: median more seeds among those futures
    pair_chance: Mapping[Tuple[str, str], float]  # per pair: the share of futures resolving it
    max_seeds: int
    futures: int
    alternatives: Mapping[str, float] = field(default_factory=dict)  # "max_seeds=60": chance; "min_effect=0.02": ...

    @property
    def done(self) -> bool:
        return self.chance == 1.0 and self.runs_median == 0

    def line(self) -> str:
        """What is still needed, in one clause for the progress line and the verdict."""
        if self.done:
            return "none: every pair is resolved"
        chance = f"{_percent(self.chance)} chance that every pair is resolved within {self.max_seeds} seeds a group"
        if self.runs_median is None:
            return chance + self.advice()
        cost = f"about {self.runs_median} more runs (80%: {self.runs_q80})"
        if self.minutes_median is not None:
            cost += f", {_minutes(self.minutes_median)} (80%: {_minutes(self.minutes_q80)}) at this pace"
        return f"{chance}; if so, {cost}{self.advice()}"

    def advice(self) -> str:
        """Empty unless the chance is low: then the pair least likely resolved and what would help."""
        if self.chance >= LOW_CHANCE or not self.pair_chance:
            return ""
        (a, b), worst = min(self.pair_chance.items(), key=lambda item: item[1])
        helps = [f"{key} gives {_percent(chance)}" for key, chance in self.alternatives.items()]
        return (f"; that is low: {a} vs {b} is resolved in only {_percent(worst)} of futures"
                + (f"; a new sweep with {' and '.join(helps)}" if helps else ""))


def forecast(values: Mapping[str, Sequence[float]], design: Design, min_effect: float,
             seconds_per_run: Optional[float] = None, futures: int = FUTURES, seed: int = 0,
             alternatives: bool = True, decision=None) -> Forecast:
    """The forecast from ``values`` (per group, its seeds' metric in seed order, as ``Sequential.decide`` takes
    them). ``seconds_per_run``: the wall seconds a run takes at the sweep's pace (a round's wall time over its
    jobs), for minutes. ``alternatives``: when the chance is low, also the chance with twice the seed budget and
    with twice the margin. ``decision`` is accepted for callers that have one; the rule replays the looks so far."""
    result = forecast_many([values], design, min_effect, seconds_per_run, futures, seed)[0]
    if alternatives and result.chance < LOW_CHANCE:
        wider = {f"max_seeds={2 * design.max_seeds}": (replace(design, max_seeds=2 * design.max_seeds), min_effect),
                 f"min_effect={_number(2 * min_effect)}": (design, 2 * min_effect)}
        result = replace(result, alternatives={
            key: forecast_many([values], other, effect, None, futures // 2, seed)[0].chance
            for key, (other, effect) in wider.items()})
    return result


def forecast_many(states: Sequence[Mapping[str, Sequence[float]]], design: Design, min_effect: float,
                  seconds_per_run: Optional[float] = None, futures: int = FUTURES, seed: int = 0) -> List[Forecast]:
    """``forecast`` for several sweeps' states at once (the same groups in each), their futures run in one batch."""
    from resnet_lab.compare.rule import BatchRule

    if not states:
        return []
    groups = list(states[0])
    rng = np.random.default_rng(seed)
    data = np.empty((len(states), futures, len(groups), design.max_seeds))
    have = np.empty((len(states), len(groups)), int)
    for s, values in enumerate(states):
        seen = [np.asarray(values[name], float)[:design.max_seeds] for name in groups]
        have[s] = [len(x) for x in seen]
        if have[s].min() < 2:
            raise ValueError("a forecast needs two or more seeds in every group")
        truths = _draw_truths(seen, futures, rng)
        for g, x in enumerate(seen):
            n = len(x)
            data[s, :, g, :n] = x
            data[s, :, g, n:] = truths[0][:, g, None] + truths[1][:, None] * rng.standard_normal(
                (futures, design.max_seeds - n))
    rule = BatchRule(design, min_effect, len(groups))
    outcome = rule.run(data.reshape(-1, len(groups), design.max_seeds))
    verdict = outcome.verdict.reshape(len(states), futures, -1)
    more = np.maximum(outcome.seeds.reshape(len(states), futures, -1) - have[:, None, :], 0)
    full = outcome.all_resolved.reshape(len(states), futures)
    minutes = (lambda r: None if r is None or not seconds_per_run else r * seconds_per_run / 60)  # noqa: E731
    results = []
    for s in range(len(states)):
        runs = more[s].sum(axis=1)[full[s]]
        median = q80 = None
        more_seeds: Dict[str, int] = {}
        if runs.size:
            median, q80 = (int(np.quantile(runs, q, method="inverted_cdf")) for q in (0.5, QUANTILE))
            more_seeds = {g: int(np.quantile(more[s][full[s], i], 0.5, method="inverted_cdf"))
                          for i, g in enumerate(groups)}
        pair_chance = {(groups[a], groups[b]): float(np.mean(verdict[s, :, p] > 0))
                       for p, (a, b) in enumerate(rule.pairs)}
        results.append(Forecast(float(full[s].mean()), median, q80, minutes(median), minutes(q80), more_seeds,
                                pair_chance, design.max_seeds, futures))
    return results


def _draw_truths(seen: Sequence[np.ndarray], futures: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``futures`` draws of each group's true mean (futures, groups) and the seeds' true sd (futures,).

    Conditional power at the estimates (Lan & Wittes 1988), averaged over which groups truly tie. The sd is the
    seeds' pooled sd (seeds of different configurations spread alike, and the pooled variance is far more precise
    than one group's). Which groups share a mean is a partition of the groups, drawn with its posterior
    probability under BIC (Schwarz 1978; Kass & Raftery 1995), exp(-chi^2/2 - |P| ln(N)/2): chi^2 the spread of the
    group means about their cluster's mean in units of their standard errors, |P| the clusters, N the seeds; each
    cluster's mean is its seeds' mean. Without ties a pair whose truth is 0 looks, from its noisy estimate, far
    less likely to be shown practically equal than it is; ties are what comparisons of configurations often hold."""
    n = np.array([len(x) for x in seen], float)
    means = np.array([x.mean() for x in seen])
    squares = sum(float(((x - x.mean()) ** 2).sum()) for x in seen)
    pooled = squares / float((n - 1).sum())
    candidates = _partitions(len(seen)) if pooled > 0 else (tuple((g,) for g in range(len(seen))),)
    log_weights = []
    for partition in candidates:
        chi2 = sum(float((n[list(c)] * (means[list(c)] - np.average(means[list(c)], weights=n[list(c)])) ** 2).sum())
                   for c in partition) / pooled if pooled > 0 else 0.0
        log_weights.append(-chi2 / 2 - len(partition) * math.log(n.sum()) / 2)
    weights = np.exp(np.array(log_weights) - max(log_weights))
    chosen = rng.choice(len(candidates), futures, p=weights / weights.sum())
    truth = np.empty((futures, len(seen)))
    for index in np.unique(chosen):
        rows = np.flatnonzero(chosen == index)
        for cluster in candidates[index]:
            truth[np.ix_(rows, list(cluster))] = np.average(means[list(cluster)], weights=n[list(cluster)])
    return truth, np.full(futures, math.sqrt(pooled))


@lru_cache(maxsize=None)
def _partitions(k: int) -> Tuple[Tuple[Tuple[int, ...], ...], ...]:
    """Every partition of groups 0..k-1 into clusters (Bell(k) of them); beyond 7 groups only "no ties"."""
    if k > 7:
        return (tuple((g,) for g in range(k)),)
    found: List[List[List[int]]] = [[]]
    for g in range(k):
        found = [p[:i] + [p[i] + [g]] + p[i + 1:] for p in found for i in range(len(p))] + [p + [[g]] for p in found]
    return tuple(tuple(tuple(c) for c in p) for p in found)


def seeds_to_resolve(diff: float, var_a: float, var_b: float, n_a: int, n_b: int, min_effect: float,
                     level_different: float, level_equal: float, fixed_var: float = 0.0) -> Optional[int]:
    """A plain sweep's advice for one unresolved pair: the fewest seeds a group at which a fixed-sample Welch test
    (at ``level_different``, two-sided) or TOST (at ``level_equal``) resolves it with probability 0.8, averaging
    over where the difference may truly lie given the seeds so far (predictive power, normal approximation):
    the estimate at n seeds is normal around ``diff`` with variance se_now^2 - se_n^2 (its seed part can still
    move; ``fixed_var``, a test set's sampling variance, cannot). None where no number of seeds does it because
    ``fixed_var`` alone is too large; MAX_SEEDS + 1 for "more than MAX_SEEDS"."""
    from scipy.special import ndtr
    from scipy.stats import t

    if not (math.isfinite(var_a) and math.isfinite(var_b)):
        return None
    start = max(n_a, n_b, 2)
    n = np.arange(start, MAX_SEEDS + 1, dtype=float)
    se = np.sqrt(var_a / n + var_b / n + fixed_var)
    move = np.sqrt(np.maximum(var_a / n_a + var_b / n_b - var_a / n - var_b / n, 0.0))
    spread2 = var_a + var_b
    df = (np.maximum((spread2 / n) ** 2 / ((var_a / n) ** 2 / (n - 1) + (var_b / n) ** 2 / (n - 1)), 1.0)
          if spread2 > 0 else np.full_like(n, np.inf))
    c_diff, c_equal = t.isf(level_different / 2, df), t.isf(level_equal, df)
    upper = c_diff * se  # |estimate| beyond this: "different"
    lower = np.maximum(min_effect - c_equal * se, 0.0)  # |estimate| within this: "practically equal"

    def within(x: np.ndarray) -> np.ndarray:  # P(|D| <= x), D ~ N(diff, move^2)
        safe = np.where(move > 0, move, 1.0)
        spread = np.where(move > 0, ndtr((x - diff) / safe) - ndtr((-x - diff) / safe),
                          (np.abs(diff) <= x).astype(float))
        return np.clip(spread, 0.0, 1.0)

    below = np.where(lower > 0, within(lower), 0.0)  # an empty equivalence region holds nothing
    unresolved = np.where(lower < upper, within(upper) - below, 0.0)
    enough = np.flatnonzero(1 - unresolved >= POWER)
    if enough.size:
        return int(n[enough[0]])
    if fixed_var > 0 and min_effect - c_equal[-1] * math.sqrt(fixed_var) <= 0:
        return None
    return MAX_SEEDS + 1


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _minutes(minutes: Optional[float]) -> str:
    if minutes is None:
        return "?"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _number(value: float) -> str:
    return f"{value:g}"
