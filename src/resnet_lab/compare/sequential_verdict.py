"""The sequential verdict in the fixed-sample verdict's words and tables (``verdict.py``, ``render.py``).

Each pair is shown at its latest look (the first n seeds of both groups, by seed order) with its sequential
verdict and sequential Holm p in place of the fixed-sample ones, so that a sweep's parent and
``resnet-lab-compare`` on it never show fixed-sample verdicts, which ignore the repeated looks. The interval in
the words is Welch's 95% interval at that look (90% in a "≈" sentence: the one that goes with the equivalence
test), what the data say now, not adjusted for the looks; the repeated confidence interval, valid over every
look and pair at once but very wide early under O'Brien-Fleming spending, is in the table's
``repeated_ci_low``/``repeated_ci_high``. What is still needed is the one forecast (``forecast.py``): each
unresolved pair's chance of being resolved within the budget, and the sweep's chance of a full verdict with the
runs and minutes it takes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from resnet_lab.compare.forecast import Forecast, forecast
from resnet_lab.compare.pairwise import LEVEL, Group, Pair, compare_pairs
from resnet_lab.compare.sequential import UNRESOLVED, Decision, Design, Sequential
from resnet_lab.compare.verdict import Verdict

DESIGN_TAG = "resnet_lab.sequential_design"  # on a sequential sweep's parent: the design, as JSON


@dataclass(frozen=True)
class SequentialVerdict(Verdict):
    """A ``Verdict`` whose p-values are the sequential design's (scaled to the 5% scale ``kind`` reads)."""

    design: Optional[Design] = None
    repeated: Mapping[Tuple[str, str], Tuple[float, float]] = field(default_factory=dict)  # (a, b): low, high
    forecast: Optional[Forecast] = None  # what is still needed (None: every pair resolved, or not computed)

    def lines(self) -> List[str]:
        lines = [self._sequential(line) for line in super().lines()]
        if lines and self.pairs and self.design is not None:
            d = self.design
            looks = d.looks()
            lines[0] = (f"{self.metric}, sequential (until_resolved): Welch's t and TOST per pair at each look "
                        f"({looks[0]} to {looks[-1]} seeds a group, every {d.per_round}), exact {d.spending} "
                        f"boundaries, graphical Holm over pairs, level {d.level:g}, margin ±{self.min_effect:g} "
                        "(min_effect); the verdicts and sequential p account for the looks, the intervals (at the "
                        "latest look) do not; the repeated intervals that do are in pairwise.csv")
            if self.forecast is not None and not self.forecast.done:
                at = next((i for i, line in enumerate(lines) if line.startswith("  ") and " pairs resolved" in line),
                          len(lines) - 1)
                lines.insert(at + 1, f"  still needed: {self.forecast.line()}")
        return lines

    def _sequential(self, line: str) -> str:
        """A fixed-sample sentence in the sequential verdict's words: its p is the sequential one, and an unresolved
        pair's "seeds needed" gives way to its chance in the forecast."""
        line = line.replace("Holm p", "sequential p")
        if self.forecast is None or "no difference detected" not in line:
            return line
        for (a, b), chance in self.forecast.pair_chance.items():
            if line.lstrip().startswith(f"{a} vs {b}: no difference detected"):
                head = line.split("; ", 1)[0]
                return (f"{head}; resolved within {self.forecast.max_seeds} seeds a group in {100 * chance:.0f}% of "
                        "the forecast's futures")
        return line

    def rows(self) -> List[Dict[str, Any]]:
        rows = []
        chances = self.forecast.pair_chance if self.forecast is not None else {}
        for row in super().rows():
            low, high = self.repeated.get((row["a"], row["b"]), (None, None))
            rows.append({**row, "sentence": self._sequential(row["sentence"]), "seeds_needed": None,
                         "p_resolved_by_max": chances.get((row["a"], row["b"])) if row["verdict"] == UNRESOLVED
                         else None, "repeated_ci_low": low, "repeated_ci_high": high})
        return rows


def design_json(design: Design, min_effect: float, metric: str, seeds: Sequence[int]) -> str:
    """The design as the parent's ``DESIGN_TAG`` holds it (``rule`` names the decision rule: a sweep tagged before
    exact boundaries has none, and its verdict is recomputed with them)."""
    return json.dumps({"first": design.first, "per_round": design.per_round, "max_seeds": design.max_seeds,
                       "level": design.level, "spending": design.spending, "min_effect": min_effect,
                       "metric": metric, "seeds": list(seeds), "rule": "exact-graphical-holm"}, sort_keys=True)


def design_from_json(text: str) -> Dict[str, Any]:
    """The tag read back; ``min_effect`` also from the ``margin`` key that earlier sweeps wrote."""
    data = json.loads(text)
    data["min_effect"] = data.get("min_effect", data.get("margin"))
    data["design"] = Design(data["first"], data["per_round"], data["max_seeds"], data["level"], data["spending"])
    return data


def sequential_verdict(values: Mapping[str, Sequence[float]], design: Design, min_effect: float, metric: str,
                       train_seconds: Mapping[str, Optional[float]], decision: Optional[Decision] = None,
                       ahead: Optional[Forecast] = None, seconds_per_run: Optional[float] = None) -> SequentialVerdict:
    """The verdict of ``Sequential.decide`` on ``values`` (per group, in seed order), as a ``Verdict``, with the
    forecast of what is still needed (``ahead``, or computed here at ``seconds_per_run``, by default the groups'
    mean training seconds)."""
    decision = decision or Sequential(design, min_effect).decide(values)
    scale = LEVEL / design.level
    pairs: List[Pair] = []
    repeated: Dict[Tuple[str, str], Tuple[float, float]] = {}
    for state in decision.pairs:
        if state.look is None:
            continue
        n = state.look
        fixed = compare_pairs([Group(state.a, list(values[state.a])[:n]), Group(state.b, list(values[state.b])[:n])],
                              metric, min_effect)[0]
        estimate = replace(fixed.test_set, p_holm=min(1.0, state.p_different * scale),
                           p_equal_holm=min(1.0, state.p_equal * scale))
        if math.isfinite(state.ci_low) and math.isfinite(state.ci_high):
            repeated[(state.a, state.b)] = (state.ci_low, state.ci_high)
        if state.verdict == UNRESOLVED:  # kind() must read it as unresolved whatever the scale
            estimate = replace(estimate, p_holm=max(estimate.p_holm, LEVEL), p_equal_holm=max(estimate.p_equal_holm,
                                                                                               LEVEL))
        pairs.append(replace(fixed, test_set=estimate, new_data=None,
                             new_data_note="a sequential sweep's verdict is on the seed-level tests"))
    single = [g for g, v in values.items() if len(v) == 1]
    if ahead is None and not decision.done and all(len(v) >= 2 for v in values.values()):
        if seconds_per_run is None:
            known = [s for s in train_seconds.values() if s is not None and s == s]
            seconds_per_run = sum(known) / len(known) if known else None
        ahead = forecast(values, design, min_effect, seconds_per_run)
    return SequentialVerdict(metric, "test_set", min_effect, pairs, single, dict(train_seconds), design, repeated,
                             ahead)


def seed_rank(first_seeds: Sequence[int]):
    """The sweep's seed order: round 1's seeds as given, then the later ones ascending."""
    return lambda seed: first_seeds.index(seed) if seed in first_seeds else len(first_seeds) + seed


def verdict_of_sweep(design_tag: str, groups: Sequence[Mapping[str, Any]], seeds: Mapping[str, Any],
                     metric: str) -> Optional[SequentialVerdict]:
    """``resnet-lab-compare`` on a sequential sweep's parent: its verdict recomputed from the FINISHED runs (each
    group in seed order, one run a seed), as the sweep computed it; None when ``metric`` is not the one the sweep
    stopped on. ``seeds`` maps a run id to its seed."""
    design = design_from_json(design_tag)
    if metric != design["metric"]:
        return None
    rank = seed_rank(design["seeds"])
    values: Dict[str, List[float]] = {}
    for group in groups:
        by_seed: Dict[int, float] = {}
        for member in group["members"]:
            value, seed = member.get(metric), seeds.get(member["run_id"])
            if member.get("status") == "FINISHED" and value is not None and value == value and seed is not None:
                by_seed.setdefault(int(seed), float(value))
        values[str(group["run"])] = [by_seed[s] for s in sorted(by_seed, key=rank)]
    seconds = {str(g["run"]): g.get("train_seconds") for g in groups}
    return sequential_verdict(values, design["design"], design["min_effect"], metric, seconds)
