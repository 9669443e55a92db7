"""The pairwise tests in words: for each pair a verdict (different, practically equal, different but inside
the margin, or unresolved and what resolving it would take), and the order of the groups once every pair
is resolved."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from resnet_lab.compare.forecast import MAX_SEEDS, seeds_to_resolve
from resnet_lab.compare.pairwise import (EQUAL_CONFIDENCE, LEVEL, OUTCOME_METRIC, Estimate, Pair, images_needed,
                                         scope_of)
from resnet_lab.compare.testing import t_quantile

DIFFERENT = "different"
EQUAL = "practically equal"
SMALL = "different, inside the margin"
UNRESOLVED = "unresolved"
SCOPES = {"test_set": "on this test set", "new_data": "on new data"}


def kind(estimate: Estimate) -> str:
    """A pair is resolved when its Holm-adjusted test rejects (different), its equivalence test does
    (practically equal), or both (a real difference too small to matter)."""
    different, equal = estimate.p_holm < LEVEL, estimate.p_equal_holm < LEVEL
    if different and equal:
        return SMALL
    return DIFFERENT if different else EQUAL if equal else UNRESOLVED


class Units:
    """Accuracies read in points (percent); other metrics in their own units."""

    def __init__(self, metric: str) -> None:
        self.scale, self.name = (100.0, "points") if "accuracy" in metric else (1.0, "")

    def __call__(self, value: float, signed: bool = False) -> str:
        digits = 1 if self.scale == 100.0 else 4
        return f"{value * self.scale:{'+' if signed else ''}.{digits}f}"

    def span(self, low: float, high: float) -> str:
        return f"{self(low, signed=True)} to {self(high, signed=True)}{' ' + self.name if self.name else ''}"

    def amount(self, value: float) -> str:
        return f"{self(value)}{' ' + self.name if self.name else ''}"

    def margin(self, value: float, adjective: bool = True) -> str:
        """``1-point`` (a 1-point difference) or, as a noun, ``1 point``."""
        number = self(value).rstrip("0").rstrip(".")
        if self.name != "points":
            return number
        return f"{number}-point" if adjective else f"{number} point{'' if number == '1' else 's'}"


def sentence(pair: Pair, scope: str, min_effect: float, train_seconds: Mapping[str, Optional[float]],
             levels: Tuple[float, float] = (LEVEL, LEVEL)) -> str:
    """One pair's verdict, the group with the higher mean first where they differ. ``levels``: the levels Holm
    gives an unresolved pair next in each family ("different", "practically equal"), for the seeds it needs."""
    estimate, units = scope_of(pair, scope), Units(pair.metric)
    if estimate.se == 0:
        return f"{pair.a} vs {pair.b}: cannot be tested: every seed gave the same value"
    high, low, diff, ci = pair.a, pair.b, estimate.diff, (estimate.ci_low, estimate.ci_high)
    if diff < 0:
        high, low, diff, ci = pair.b, pair.a, -diff, (-estimate.ci_high, -estimate.ci_low)
    verdict = kind(estimate)
    interval = f"[{units(ci[0])}, {units(ci[1])}]"
    if verdict == DIFFERENT:
        return f"{high} > {low} by {units.amount(diff)} {interval}, Holm p {_p(estimate.p_holm)}"
    if verdict == SMALL:
        return (f"{high} > {low} by {units.amount(diff)} {interval}, Holm p {_p(estimate.p_holm)}: a real "
                f"difference, inside the ±{units.margin(min_effect)} margin")
    if verdict == EQUAL:
        low90, high90 = interval_at(estimate, EQUAL_CONFIDENCE)
        return (f"{pair.a} ≈ {pair.b}: the difference, {units.span(low90, high90)} (90% interval, which goes with "
                f"the equivalence test), is inside the ±{units.margin(min_effect)} margin (equivalence Holm p "
                f"{_p(estimate.p_equal_holm)})")
    return (f"{pair.a} vs {pair.b}: no difference detected, {units.span(estimate.ci_low, estimate.ci_high)}; "
            f"{_what_it_takes(pair, scope, min_effect, units, train_seconds, levels)}")


def interval_at(estimate: Estimate, confidence: float) -> Tuple[float, float]:
    """The difference's Welch interval at another confidence than the 95% it carries."""
    half = float(t_quantile((1 + confidence) / 2, estimate.df)) * estimate.se
    return estimate.diff - half, estimate.diff + half


def holm_levels(pairs: Sequence[Pair], scope: str) -> Tuple[float, float]:
    """The level Holm's next step gives an unresolved pair in each family: LEVEL over the pairs that family has
    not rejected yet."""
    estimates = [scope_of(p, scope) for p in pairs]
    left_different = sum(not e.p_holm < LEVEL for e in estimates) or 1
    left_equal = sum(not e.p_equal_holm < LEVEL for e in estimates) or 1
    return LEVEL / left_different, LEVEL / left_equal


def _what_it_takes(pair: Pair, scope: str, min_effect: float, units: Units,
                   train_seconds: Mapping[str, Optional[float]], levels: Tuple[float, float]) -> str:
    """The seeds a group at which the pair is resolved either way with probability 0.8, at Holm's next levels
    (``forecast.seeds_to_resolve``); on new data, the test images where seeds alone cannot."""
    seeds = _seeds_to_resolve(pair, scope, min_effect, levels)
    if seeds is None:
        images = images_needed(min_effect, pair.per_image_var)
        return (f"on new data no number of seeds tells ±{units.margin(min_effect, adjective=False)} apart with "
                f"{pair.test_images:,} test images: that takes {images:,} or more")
    target = f"resolving it at a {units.margin(min_effect)} margin"
    if seeds > MAX_SEEDS:
        return f"{target} needs more than {MAX_SEEDS} seeds a group"
    extra = [max(0, seeds - n) * s for n, s in ((pair.n_a, train_seconds.get(pair.a)),
                                                 (pair.n_b, train_seconds.get(pair.b))) if s is not None and s == s]
    cost = f" (about {_duration(sum(extra))} more training at these runs' speed)" if len(extra) == 2 else ""
    return f"{target} needs about {seeds} seeds a group{cost}"


def order_line(pairs: Sequence[Pair], scope: str) -> Optional[str]:
    """``A > B ≈ C``: the groups by mean, each beside the next with its pair's relation; None until every
    pair is resolved."""
    if not pairs or any(kind(scope_of(p, scope)) == UNRESOLVED for p in pairs):
        return None
    means: Dict[str, float] = {}
    relation: Dict[frozenset, str] = {}
    for p in pairs:
        means[p.a], means[p.b] = p.mean_a, p.mean_b
        relation[frozenset((p.a, p.b))] = "≈" if kind(scope_of(p, scope)) == EQUAL else ">"
    ranked = sorted(means, key=lambda name: -means[name])
    parts = [ranked[0]]
    for before, after in zip(ranked, ranked[1:]):
        parts += [relation[frozenset((before, after))], after]
    return " ".join(parts)


@dataclass(frozen=True)
class Verdict:
    """The pairwise tests of a comparison on one metric, and how to tell them."""

    metric: str
    scope: str  # test_set | new_data
    min_effect: float
    pairs: Sequence[Pair]
    single: Sequence[str]  # groups with one run: no test
    train_seconds: Mapping[str, Optional[float]]  # each group's mean training time, for the cost of more seeds

    def lines(self) -> List[str]:
        return verdict_lines(self.pairs, self.scope, self.min_effect, self.metric, self.train_seconds, self.single)

    def rows(self) -> List[Dict[str, Any]]:
        return pair_rows(self.pairs, self.scope, self.min_effect, self.train_seconds)

    def short(self) -> str:
        """One line for the MLflow UI's run description: the order, or how many pairs are resolved."""
        if not self.pairs:
            return f"{self.metric}: no pair of groups with two runs or more to test"
        order = order_line(self.pairs, self.scope)
        if order:
            return f"{self.metric} {SCOPES[self.scope]}: {order}"
        resolved = sum(kind(scope_of(p, self.scope)) != UNRESOLVED for p in self.pairs)
        return f"{self.metric} {SCOPES[self.scope]}: {resolved} of {len(self.pairs)} pairs resolved"


def verdict_lines(pairs: Sequence[Pair], scope: str, min_effect: float, metric: str,
                  train_seconds: Mapping[str, Optional[float]], single: Sequence[str] = ()) -> List[str]:
    """The verdict a person reads: a heading, a line per pair, the order when all are resolved, and what
    could not be tested."""
    lines: List[str] = []
    if pairs:
        units = Units(metric)
        fallback = scope == "new_data" and any(p.new_data is None for p in pairs)
        lines.append(f"{metric} {SCOPES[scope]}: Welch's t per pair, Holm-adjusted, equivalence margin "
                     f"±{units.margin(min_effect, adjective=False)} (compare.min_effect)")
        levels = holm_levels(pairs, scope)
        lines += [f"  {sentence(p, scope, min_effect, train_seconds, levels)}" for p in pairs]
        order = order_line(pairs, scope)
        if order:
            lines.append(f"  order: {order}")
        resolved = sum(kind(scope_of(p, scope)) != UNRESOLVED for p in pairs)
        lines.append(f"  {resolved} of {len(pairs)} pairs resolved")
        if fallback:
            notes = sorted({p.new_data_note for p in pairs if p.new_data is None})
            lines.append(f"  on this test set only where {'; '.join(notes)}")
        if metric != OUTCOME_METRIC:
            lines.append(f"  {metric} has no per-example outcomes: seed-level tests only")
    else:
        lines.append(f"{metric}: no two groups with two or more values each, so no pairwise test")
    if single:
        lines.append(f"{metric}, no test (one run; more seeds give one, e.g. seed=1,2,3): {', '.join(single)}")
    return lines


def pair_rows(pairs: Sequence[Pair], scope: str, min_effect: float,
              train_seconds: Mapping[str, Optional[float]]) -> List[Dict[str, Any]]:
    """One flat record per pair (csv, json): both scopes' numbers, the verdict and the seeds it would take."""
    rows = []
    levels = holm_levels(pairs, scope)
    for p in pairs:
        row: Dict[str, Any] = {"a": p.a, "b": p.b, "metric": p.metric, "n_a": p.n_a, "n_b": p.n_b,
                               "mean_a": p.mean_a, "mean_b": p.mean_b}
        for name, estimate in (("test_set", p.test_set), ("new_data", p.new_data)):
            for field in ("diff", "ci_low", "ci_high", "df", "p", "p_holm", "p_equal_holm", "prob_a_beats_b",
                          "prob_low", "prob_high"):
                value = getattr(estimate, field) if estimate is not None else None
                row[f"{name}_{field}"] = None if value is not None and not math.isfinite(value) else value
        row["new_data_note"] = p.new_data_note
        row["verdict"] = kind(scope_of(p, scope))
        row["scope"] = scope if scope == "test_set" or p.new_data is not None else "test_set"
        estimate = scope_of(p, scope)
        row["p_holm"], row["p_equal_holm"] = estimate.p_holm, estimate.p_equal_holm  # the verdict's family
        row["seeds_needed"] = (_seeds_to_resolve(p, scope, min_effect, levels)
                               if row["verdict"] == UNRESOLVED and estimate.se > 0 else None)
        row["sentence"] = sentence(p, scope, min_effect, train_seconds, levels)
        rows.append(row)
    return rows


def _seeds_to_resolve(pair: Pair, scope: str, min_effect: float, levels: Tuple[float, float]) -> Optional[int]:
    """``forecast.seeds_to_resolve`` for this pair in ``scope``; None where seeds alone cannot (a test set too
    small)."""
    estimate = scope_of(pair, scope)
    fixed = pair.per_image_var / pair.test_images if scope == "new_data" and pair.new_data is not None else 0.0
    return seeds_to_resolve(estimate.diff, pair.var_a, pair.var_b, pair.n_a, pair.n_b, min_effect, levels[0],
                            levels[1], fixed)


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
