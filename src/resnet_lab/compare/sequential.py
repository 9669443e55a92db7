"""Seeds until resolved: the pairwise verdict of a sweep that looks at its data after every round of seeds.

Looking after every round and stopping once a test passes inflates false verdicts unless the looks are paid for.
This module pays for them exactly, with group-sequential boundaries for correlated looks and a multiple-testing
graph that passes the level of a resolved pair on to the others:

- **The looks are fixed in advance.** With ``first`` seeds in round 1, ``per_round`` more a round and at most
  ``max_seeds`` a group, the looks are n_1 = first, n_2 = first + per_round, ..., capped at max_seeds; look j is
  at information fraction t_j = n_j / max_seeds (both groups of a pair have n_j seeds there, so the information
  of the difference, n_j / (sigma_a^2 + sigma_b^2), is that share of the last look's).
- **A pair is tested at a look on the first n_j seeds (by seed order) of each of its two groups**: Welch's t for
  a difference (two-sided), TOST against ±min_effect for "practically equal" (one-sided), each carried to the
  standard normal scale through its p-value (``testing.z_of``).
- **Each hypothesis spends w * alpha(t)**, w its weight, alpha(t) the spending function (``boundaries.py``), and
  its boundaries at every look so far are the exact ones for that spending (``boundaries.boundary_table``).
- **Graphical Holm over the pairs** (Maurer & Bretz 2013), in two separate families, "different" (H0: equal
  means) and "practically equal" (H0: |difference| >= min_effect); nothing passes between them. Within a family,
  a rejected hypothesis passes its weight on equally to the rest (Holm's graph: with v left, each has 1/v),
  and their boundaries are recomputed over all looks so far for the new weight. By the closed testing principle
  this rejects H_i once, for every set J of hypotheses holding it, some H_k in J has crossed, at some look so
  far, the boundary of weight 1/|J|; Holm's graph is consonant, so that is Holm's step-down on each
  hypothesis's smallest crossing weight w*_i: sorted ascending, reject while (m - k + 1) w*_(k) <= 1.

Because the verdict is a function of the per-seed values alone (every look up to the present, recomputed), it is
the same whoever computes it, after a resume or in ``resnet-lab-compare``; a look missed in real time (a resume
that adds several rounds' seeds at once) is taken on the seed prefix all the same, and a pair once resolved
stays resolved (more looks only lower w*). Looks a pair never gets (its groups stopped) only make rejection
rarer. Seeds beyond the last look a group reached wait for the next look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from resnet_lab.compare.boundaries import SPENDINGS, boundary_table, spending_function
from resnet_lab.compare.testing import holm, p_of, t_quantile, welch_values, z_of

DIFFERENT = "different"
EQUAL = "practically equal"
SMALL = "different, inside the margin"
UNRESOLVED = "unresolved"
ALL_RESOLVED = "all resolved"
SEED_BUDGET = "seed budget"
TIME_BUDGET = "time budget"
TOLERANCE = 1e-9  # Holm's comparison of w* against 1/v, which the log interpolation reproduces to a few ulps

__all__ = ["SPENDINGS", "DIFFERENT", "EQUAL", "SMALL", "UNRESOLVED", "ALL_RESOLVED", "SEED_BUDGET", "TIME_BUDGET",
           "Design", "PairState", "Decision", "Sequential", "next_round", "stop_reason", "simulate",
           "welch_tests"]


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

    def fractions(self) -> Tuple[float, ...]:
        """Each look's information fraction, n_j / max_seeds."""
        return tuple(n / self.max_seeds for n in self.looks())

    def spent(self, t: float) -> float:
        """alpha(t): the share of the level spent by information fraction t (weight 1)."""
        return spending_function(self.spending, self.level)(t)

    def increments(self) -> Dict[int, float]:
        """Each look's share at weight 1: alpha(t_j) - alpha(t_{j-1}); they add up to the level."""
        shares, before = {}, 0.0
        for n in self.looks():
            now = self.spent(n / self.max_seeds)
            shares[n] = now - before
            before = now
        return shares

    def boundaries(self, weight: float, sided: int) -> np.ndarray:
        """The z boundaries at every look for a hypothesis of this weight (two-sided: "different"; one-sided:
        each side of TOST, "practically equal")."""
        return boundary_table(self.fractions(), self.spending, self.level, float(weight), sided)

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
    w_different: float  # the smallest weight whose boundary it crossed at some look (inf: none)
    w_equal: float
    p_different: float  # sequential Holm p, on the level's scale: resolved when <= level
    p_equal: float
    verdict: str
    diff: float = math.nan  # at the latest look
    ci_low: float = math.nan  # repeated confidence interval: the intersection over the looks
    ci_high: float = math.nan
    resolved_at: Optional[int] = None  # the first look (seeds a group) at which it was resolved
    no_spread: bool = False  # both groups' seeds all gave the same value: cannot be tested


@dataclass
class Decision:
    """All pairs after a look; which groups still need seeds; the values it was decided on."""

    pairs: List[PairState]
    groups: Sequence[str]
    values: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

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
    min_effect: float
    intervals: bool = True  # the repeated confidence intervals (for the report; the decision does not need them)

    def decide(self, values: Mapping[str, Sequence[float]], first_resolution: bool = True) -> Decision:
        """``values``: per group, its finished seeds' metric in seed order. Groups in the order given.
        ``resolved_at`` is always the first resolving look (``first_resolution`` is kept for callers)."""
        groups = list(values)
        arrays = {g: np.asarray(values[g], float) for g in groups}
        names = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]
        m = len(names)
        looks = self.design.looks()
        z_diff = np.full((m, len(looks)), -math.inf)  # -inf: no look there
        z_equal = np.full((m, len(looks)), -math.inf)
        latest: List[Optional[Tuple[int, float, float, float, bool]]] = []
        halves = []
        for i, (a, b) in enumerate(names):
            reached = min(len(arrays[a]), len(arrays[b]))
            taken = [j for j, n in enumerate(looks) if n <= reached]
            last, pair_halves = None, []
            for j in taken:
                n = looks[j]
                test = welch_values(arrays[a][:n], arrays[b][:n], self.min_effect)
                if not test.no_spread:
                    z_diff[i, j], z_equal[i, j] = z_of(test.p, 2), z_of(test.p_equal, 1)
                last = (n, float(test.diff), float(test.se), float(test.df), bool(test.no_spread))
                pair_halves.append((j, float(test.diff), float(test.se), float(test.df)))
            latest.append(last)
            halves.append(pair_halves)
        w_diff = np.array([self._smallest_weight(z_diff[i], 2, m) for i in range(m)])
        w_equal = np.array([self._smallest_weight(z_equal[i], 1, m) for i in range(m)])
        adj_diff, adj_equal = holm(w_diff), holm(w_equal)
        first = self._first_resolving_look(z_diff, z_equal, m)
        states = []
        level = self.design.level
        for i, (a, b) in enumerate(names):
            different, equal = adj_diff[i] <= 1 + TOLERANCE, adj_equal[i] <= 1 + TOLERANCE
            verdict = SMALL if different and equal else DIFFERENT if different else EQUAL if equal else UNRESOLVED
            look, diff, _, _, no_spread = latest[i] or (None, math.nan, math.nan, math.nan, False)
            low, high = self._repeated_interval(halves[i], m) if self.intervals else (math.nan, math.nan)
            states.append(PairState(a, b, look, float(w_diff[i]), float(w_equal[i]),
                                    float(min(1.0, adj_diff[i] * level)), float(min(1.0, adj_equal[i] * level)),
                                    verdict, diff, low, high, first[i] if verdict != UNRESOLVED else None,
                                    no_spread))
        return Decision(states, groups, arrays)

    def _first_resolving_look(self, z_diff: np.ndarray, z_equal: np.ndarray, m: int) -> List[Optional[int]]:
        """Per pair, the seeds a group of the first look at which the rule, on the data up to that look, resolved it:
        Holm on the crossing weights 1/v (v = 1..m), look by look."""
        looks = self.design.looks()
        crossed = []
        for z, sided in ((z_diff, 2), (z_equal, 1)):
            table = np.stack([self.design.boundaries(1.0 / v, sided) for v in range(1, m + 1)])  # (v, look)
            hit = z[:, None, :] >= table[None, :, :]  # (pair, v, look)
            level = np.where(hit, np.arange(1, m + 1)[None, :, None], 0).max(axis=1)  # largest v crossed, per look
            crossed.append(np.maximum.accumulate(level, axis=1))
        first: List[Optional[int]] = [None] * m
        for j, n in enumerate(looks):
            resolved = holm_by_weights(crossed[0][:, j], m) | holm_by_weights(crossed[1][:, j], m)
            for i in np.flatnonzero(resolved):
                if first[i] is None:
                    first[i] = n
        return first

    def _smallest_weight(self, z: np.ndarray, sided: int, m: int) -> float:
        """w*: the smallest weight whose boundary z crossed at some look, interpolated in log w between weights
        whose boundaries are computed (Holm's 1/v exactly, and a few more for the p shown); inf if none."""
        if not np.any(np.isfinite(z)):
            return math.inf
        nodes = _weight_nodes(m, self.design.level)
        cross = lambda w: bool(np.any(z >= self.design.boundaries(w, sided)))  # noqa: E731  monotone in w
        if not cross(nodes[-1]):
            return math.inf
        if cross(nodes[0]):
            return nodes[0]
        low, high = 0, len(nodes) - 1  # nodes[low] does not cross, nodes[high] does
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if cross(nodes[mid]) else (mid, high)
        c_low, c_high = self.design.boundaries(nodes[low], sided), self.design.boundaries(nodes[high], sided)
        best = nodes[high]
        for j in np.flatnonzero(z >= c_high):
            if math.isfinite(c_low[j]) and c_low[j] > c_high[j]:
                share = (c_low[j] - z[j]) / (c_low[j] - c_high[j])
                best = min(best, math.exp(math.log(nodes[low]) + share * math.log(nodes[high] / nodes[low])))
            else:
                best = min(best, nodes[high])
        return best

    def _repeated_interval(self, looks: Sequence[Tuple[int, float, float, float]], m: int) -> Tuple[float, float]:
        """The repeated confidence interval (Jennison & Turnbull, JRSS B 1989): at each look the difference ± its
        boundary at weight 1/m (back on the t scale), intersected over the looks; valid at every look and pair."""
        if not looks:
            return math.nan, math.nan
        table = self.design.boundaries(1.0 / m, 2)
        low, high = -math.inf, math.inf
        for j, diff, se, df in looks:
            half = float(t_quantile(1 - p_of(table[j], 2) / 2, df)) * se if math.isfinite(table[j]) else math.inf
            low, high = max(low, diff - half), min(high, diff + half)
        if low > high:  # the intersection is empty: keep the latest look's interval
            j, diff, se, df = looks[-1]
            half = float(t_quantile(1 - p_of(table[j], 2) / 2, df)) * se if math.isfinite(table[j]) else math.inf
            low, high = diff - half, diff + half
        return low, high


def holm_by_weights(crossed: np.ndarray, m: int) -> np.ndarray:
    """Holm's step-down on integer crossing levels (the largest v whose weight-1/v boundary each hypothesis crossed;
    0: none), along the last axis of m hypotheses: R rejections where the v's sorted descending satisfy
    v_(j) >= m - j + 1 for j <= R; hypothesis i is rejected when v_i >= m - R + 1."""
    ordered = -np.sort(-crossed, axis=-1)
    steps = ordered >= (m - np.arange(m))
    rejections = np.cumprod(steps, axis=-1).sum(axis=-1)
    return (rejections[..., None] > 0) & (crossed >= (m - rejections + 1)[..., None])


def _weight_nodes(m: int, level: float) -> Tuple[float, ...]:
    """The weights whose boundaries are computed: 1/v for v = 1..m (the decisions), and for the p shown, down to
    1/(64 m) (p < 0.001) and up to 1/level (p = 1)."""
    nodes = {1.0 / v for v in range(1, m + 1)} | {1.0 / (m * 2 ** j) for j in range(1, 7)}
    nodes |= {w for w in (2.0, 4.0, 8.0, 16.0) if w < 1 / level} | {1.0 / level}
    return tuple(sorted(nodes))


def welch_tests(a: np.ndarray, b: np.ndarray, min_effect: float) -> Tuple[float, float, float, float, float, float]:
    """p (two-sided Welch), p of TOST against ±min_effect, diff, se, df and the pooled sd (``testing``)."""
    test = welch_values(a, b, min_effect)
    sd = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return float(test.p), float(test.p_equal), float(test.diff), float(test.se), float(test.df), sd


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
             min_effect: float) -> Tuple[Decision, Dict[str, int], str]:
    """Run the sweep's decision loop on synthetic results: ``draw(group, n)`` gives a group's first n seeds'
    values (the same prefix whenever asked). Returns the last decision, the seeds a group and the stop reason."""
    seeds = {g: design.first for g in groups}
    sequential = Sequential(design, min_effect, intervals=False)
    while True:
        decision = sequential.decide({g: draw(g, seeds[g]) for g in groups})
        reason = stop_reason(decision, seeds, design)
        if reason is not None:
            return decision, seeds, reason
        seeds.update(next_round(decision, seeds, design))
