"""Seeds until resolved: the pairwise verdict of a sweep that looks at its data after every round of seeds.

Looking after every round and stopping once a test passes inflates false verdicts unless the looks are paid
for. This module pays for them with alpha spending (Lan & DeMets 1983) and a union bound over looks and
pairs, which needs no joint distribution of the test statistics and holds for looks taken at any time:

- **The looks are fixed in advance.** With ``first`` seeds in round 1, ``per_round`` more a round and at most
  ``max_seeds`` a group, the possible looks are n_1 = first, n_2 = first + per_round, ..., capped at
  max_seeds; look j is at information fraction t_j = n_j / max_seeds.
- **Each look gets its share of the level.** The spending function alpha(t) rises from 0 to the level at
  t = 1; look j may spend alpha(t_j) - alpha(t_{j-1}). O'Brien-Fleming type (the default):
  alpha(t) = 2 - 2 Phi(z_{1-level/2} / sqrt(t)), which spends almost nothing early (O'Brien & Fleming 1979;
  the spending form is Lan & DeMets'); Pocock type: level * ln(1 + (e - 1) t).
- **A pair is tested at a look on the first n_j seeds (by seed order) of each of its two groups**: Welch's
  t for a difference, two one-sided Welch tests (TOST) against ±margin for equivalence, as in
  ``pairwise.py``. Its score r = min over the looks so far of p_j / (alpha(t_j) - alpha(t_{j-1})).
- **Holm over the pairs on r**: sorted ascending, the k-th smallest rejects while r <= 1 / (pairs - k).
  This is the closed test whose intersection tests reject when some r_i <= 1/|I|; each has level
  sum_i sum_j (spent at j)/|I| <= level by the union bound, whatever the dependence between pairs and looks
  (Jennison & Turnbull 2000 on alpha spending and several hypotheses; Maurer & Bretz 2013, Statistics in
  Biopharmaceutical Research, on Holm-type procedures in group-sequential trials).
  Looks never taken (a pair whose groups got no more seeds) count as p = 1, which only makes rejection rarer,
  so the bound also holds when which groups get seeds depends on the data.

Because the verdict is a function of the per-seed values alone (every look up to the present, recomputed),
it is the same whoever computes it, after a resume or in ``resnet-lab-compare``, and a pair once resolved
stays resolved: more seeds add looks, and r only falls.

"Different" and "practically equal" are each controlled at the level (as in the fixed-sample verdict).
"""

from __future__ import annotations

import math
from functools import cached_property
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

SPENDINGS = ("obrien_fleming", "pocock")
DIFFERENT = "different"
EQUAL = "practically equal"
SMALL = "different, inside the margin"
UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class Design:
    """When the sweep may look, and how much of the level each look may spend."""

    first: int  # seeds a group in round 1
    per_round: int  # seeds a group added by each later round
    max_seeds: int  # seeds a group at most: information fraction 1
    level: float = 0.05
    spending: str = "obrien_fleming"

    def __post_init__(self) -> None:
        if self.first < 2 or self.per_round < 1 or self.max_seeds < self.first:
            raise ValueError(f"a design needs first >= 2, per_round >= 1 and max_seeds >= first: {self}")
        if not 0 < self.level < 1 or self.spending not in SPENDINGS:
            raise ValueError(f"level in (0, 1) and spending in {SPENDINGS}: {self}")

    def looks(self) -> List[int]:
        """The seeds a group at which the sweep may look, in order; the last is max_seeds."""
        seeds = list(range(self.first, self.max_seeds, self.per_round))
        return seeds + [self.max_seeds]

    def spent(self, t: float) -> float:
        """alpha(t): the share of the level spent by information fraction t."""
        from scipy.special import ndtr, ndtri

        t = min(max(t, 0.0), 1.0)
        if t == 0:
            return 0.0
        if self.spending == "pocock":
            return self.level * math.log(1 + (math.e - 1) * t)
        return float(2 * ndtr(ndtri(self.level / 2) / math.sqrt(t)))

    def increments(self) -> Dict[int, float]:
        """Each look's share: alpha(t_j) - alpha(t_{j-1}); they add up to the level."""
        return dict(self._shares)

    @cached_property
    def _shares(self) -> Dict[int, float]:
        shares, before = {}, 0.0
        for n in self.looks():
            now = self.spent(n / self.max_seeds)
            shares[n] = now - before
            before = now
        return shares

    def look_at(self, seeds: int) -> Optional[int]:
        """The last look that ``seeds`` seeds a group reach (None before the first)."""
        reached = [n for n in self.looks() if n <= seeds]
        return reached[-1] if reached else None

    def next_look(self, seeds: int) -> Optional[int]:
        """The seeds a group of the look after ``seeds``; None at the budget."""
        later = [n for n in self.looks() if n > seeds]
        return later[0] if later else None


@dataclass(frozen=True)
class PairState:
    """One pair after the latest look: its scores, its verdict and the look it stands on."""

    a: str
    b: str
    look: Optional[int]  # seeds a group of the latest look (None: not tested yet)
    r_different: float  # min over looks of p / spent
    r_equal: float
    p_different: float  # sequential Holm p, on the level's scale: resolved when <= level
    p_equal: float
    verdict: str
    diff: float = math.nan  # at the latest look
    ci_low: float = math.nan  # repeated confidence interval: the intersection over the looks
    ci_high: float = math.nan
    resolved_at: Optional[int] = None  # the first look at which it was resolved


@dataclass
class Decision:
    """All pairs after a look; which groups still need seeds."""

    pairs: List[PairState]
    groups: Sequence[str]

    @property
    def resolved(self) -> int:
        return sum(p.verdict != UNRESOLVED for p in self.pairs)

    @property
    def unresolved_groups(self) -> List[str]:
        open_pairs = [p for p in self.pairs if p.verdict == UNRESOLVED]
        return [g for g in self.groups if any(g in (p.a, p.b) for p in open_pairs)]

    @property
    def done(self) -> bool:
        return all(p.verdict != UNRESOLVED for p in self.pairs)


@dataclass
class Sequential:
    """The verdict of a seeds-until-resolved sweep; ``decide`` is a pure function of the per-seed values."""

    design: Design
    margin: float
    intervals: bool = True  # the repeated confidence intervals (for the report; the decision does not need them)
    _cache: Dict[tuple, object] = field(default_factory=dict, repr=False)

    def decide(self, values: Mapping[str, Sequence[float]], first_resolution: bool = True) -> Decision:
        """``values``: per group, its finished seeds' metric in seed order. Groups in the order given.
        ``first_resolution`` also finds the look at which each resolved pair was first resolved."""
        decision = self._decide(values)
        if first_resolution and decision.resolved:
            first: Dict[Tuple[str, str], int] = {}
            for n in sorted({p.look for p in decision.pairs if p.verdict != UNRESOLVED}):
                earlier = self._decide({g: list(v)[:n] for g, v in values.items()})
                for p in earlier.pairs:
                    if p.verdict != UNRESOLVED:
                        first.setdefault((p.a, p.b), n)
            decision.pairs = [replace(p, resolved_at=first.get((p.a, p.b), p.look)) if p.verdict != UNRESOLVED
                              else p for p in decision.pairs]
        return decision

    def _decide(self, values: Mapping[str, Sequence[float]]) -> Decision:
        groups = list(values)
        shares = self.design._shares
        pairs = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]
        scores = []
        for a, b in pairs:
            reached = min(len(values[a]), len(values[b]))
            r_diff = r_equal = math.inf
            low, high, diff = -math.inf, math.inf, math.nan
            looks = [n for n in self.design.looks() if n <= reached]
            for n in looks:
                p, p_eq, d, se, df_, _ = self._test(a, b, n, values)
                share = shares[n]
                r_diff, r_equal = min(r_diff, p / share), min(r_equal, p_eq / share)
                diff = d
                if self.intervals:
                    half = self._half(n, df_, len(pairs)) * se
                    low, high = max(low, d - half), min(high, d + half)
            if looks and self.intervals and low > high:  # the intersection is empty: keep the latest look's interval
                _, _, d, se, df_, _ = self._test(a, b, looks[-1], values)
                half = self._half(looks[-1], df_, len(pairs)) * se
                low, high = d - half, d + half
            scores.append((a, b, looks[-1] if looks else None, r_diff, r_equal, diff, low, high))
        adj_diff = _holm([s[3] for s in scores])
        adj_equal = _holm([s[4] for s in scores])
        states = []
        level = self.design.level
        for (a, b, look, r_d, r_e, diff, low, high), h_d, h_e in zip(scores, adj_diff, adj_equal):
            different, equal = h_d <= 1.0, h_e <= 1.0
            verdict = SMALL if different and equal else DIFFERENT if different else EQUAL if equal else UNRESOLVED
            states.append(PairState(a, b, look, r_d, r_e, min(1.0, h_d * level), min(1.0, h_e * level), verdict,
                                    diff, low, high))
        return Decision(states, groups)

    def _half(self, n: int, df: float, pairs: int) -> float:
        """The repeated interval's quantile at look n: this look's share of the level, split over the pairs."""
        return _t_isf(self.design._shares[n] / (2 * pairs), df)

    def _test(self, a: str, b: str, n: int, values: Mapping[str, Sequence[float]]):
        key = (a, b, n)
        if key not in self._cache:
            self._cache[key] = welch_tests(np.asarray(values[a][:n], float), np.asarray(values[b][:n], float),
                                           self.margin)
        return self._cache[key]


def welch_tests(a: np.ndarray, b: np.ndarray, margin: float) -> Tuple[float, float, float, float, float, float]:
    """p (two-sided Welch), p of TOST against ±margin, diff, se, df, and the pooled sd (as ``pairwise.welch``)."""
    mean_a, mean_b = float(a.mean()), float(b.mean())
    var_a, var_b = float(((a - mean_a) ** 2).sum()) / (len(a) - 1), float(((b - mean_b) ** 2).sum()) / (len(b) - 1)
    va, vb = var_a / len(a), var_b / len(b)
    se2, diff = va + vb, mean_a - mean_b
    sd = math.sqrt((var_a + var_b) / 2)
    if se2 <= 0:
        return (1.0 if diff == 0 else 0.0), (0.0 if abs(diff) < margin else 1.0), diff, 0.0, math.inf, sd
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    se = math.sqrt(se2)
    p = 2 * _t_sf(abs(diff) / se, df)
    p_eq = max(_t_sf((diff + margin) / se, df), _t_sf((margin - diff) / se, df))
    return p, p_eq, diff, se, df, sd


def _t_sf(x: float, df: float) -> float:
    """Student's t upper tail (scipy.special's ufunc: microseconds, where scipy.stats.t takes tens)."""
    from scipy.special import stdtr

    return float(stdtr(df, -x))


def _t_isf(q: float, df: float) -> float:
    from scipy.special import ndtri, stdtrit

    return float(-ndtri(q) if not math.isfinite(df) else stdtrit(df, 1 - q))


def _holm(scores: Sequence[float]) -> List[float]:
    """Holm-adjusted scores: the k-th smallest times (m - k), made monotone; rejected where <= 1."""
    m = len(scores)
    order = sorted(range(m), key=lambda i: scores[i])
    adjusted, running = [math.inf] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, (m - k) * scores[i])
        adjusted[i] = running
    return adjusted


def seeds_still_needed(decision: Decision, seeds: Mapping[str, int], sd: Mapping[Tuple[str, str], float],
                       design: Design, margin: float) -> Dict[str, int]:
    """Per unresolved group, the seeds a group its unresolved pairs would need (fixed-sample power 0.8 at the
    level the design spends on its last look, split over the pairs), capped at the budget."""
    from resnet_lab.compare.pairwise import seeds_for_equivalence

    pairs = len(decision.pairs) or 1
    share = design.increments()[design.max_seeds] / pairs
    target: Dict[str, int] = {}
    for p in decision.pairs:
        if p.verdict != UNRESOLVED:
            continue
        spread = sd.get((p.a, p.b), math.nan)
        need = _seeds_for_difference(spread, margin, share)
        equal = seeds_for_equivalence(spread, margin) if math.isfinite(spread) else None
        wanted = min(x for x in (need, equal, design.max_seeds) if x is not None)
        for g in (p.a, p.b):
            target[g] = max(target.get(g, 0), min(design.max_seeds, max(wanted, seeds.get(g, 0))))
    return {g: n - seeds.get(g, 0) for g, n in target.items()}


def _seeds_for_difference(sd: float, effect: float, alpha: float) -> Optional[int]:
    """Seeds a group to detect ``effect`` at two-sided level ``alpha`` with power 0.8, normal approximation."""
    from scipy.stats import norm

    if not math.isfinite(sd) or sd <= 0 or effect <= 0:
        return None if not math.isfinite(sd) else 2
    z = norm.isf(alpha / 2) + norm.isf(0.2)
    return max(2, math.ceil(2 * (sd * z / effect) ** 2))


ALL_RESOLVED = "all resolved"
SEED_BUDGET = "seed budget"
TIME_BUDGET = "time budget"


def next_round(decision: Decision, seeds: Mapping[str, int], design: Design) -> Dict[str, int]:
    """The seeds a group each group in an unresolved pair is brought to next: its next look, within the budget.
    Empty when every pair is resolved or the unresolved ones are at the budget."""
    targets = {}
    for group in decision.unresolved_groups:
        upto = design.next_look(seeds.get(group, 0))
        if upto is not None:
            targets[group] = upto
    return targets


def stop_reason(decision: Decision, seeds: Mapping[str, int], design: Design) -> Optional[str]:
    """Why the sweep stops after this look (all resolved, or the seed budget), or None to go on."""
    if decision.done:
        return ALL_RESOLVED
    if not next_round(decision, seeds, design):
        return SEED_BUDGET
    return None


def simulate(draw: Callable[[str, int], np.ndarray], groups: Sequence[str], design: Design,
             margin: float) -> Tuple[Decision, Dict[str, int], str]:
    """Run the sweep's decision loop on synthetic results: ``draw(group, n)`` gives a group's first n seeds'
    values (the same prefix whenever asked). Returns the last decision, the seeds a group and the stop reason."""
    seeds = {g: design.first for g in groups}
    sequential = Sequential(design, margin, intervals=False)
    while True:
        decision = sequential.decide({g: draw(g, seeds[g]) for g in groups}, first_resolution=False)
        reason = stop_reason(decision, seeds, design)
        if reason is not None:
            return decision, seeds, reason
        seeds.update(next_round(decision, seeds, design))
