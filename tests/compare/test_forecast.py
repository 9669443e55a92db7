"""The vectorised rule (compare/rule.py) decides as ``Sequential.decide`` does, and the forecast of what is left
(compare/forecast.py) says what it should: synthetic seeds, fixed RNG."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_lab.compare.forecast import forecast
from resnet_lab.compare.rule import BatchRule
from resnet_lab.compare.sequential import UNRESOLVED, Design, Sequential, simulate
from resnet_lab.compare.sequential_verdict import sequential_verdict

CODES = {"unresolved": 0, "different": 1, "practically equal": 2, "different, inside the margin": 3}


def assert_rule_decides_as_the_sweeper(design, means, min_effect, sweeps, seed):
    rng = np.random.default_rng(seed)
    data = np.asarray(means, float)[None, :, None] + rng.standard_normal((sweeps, len(means), design.max_seeds))
    outcome = BatchRule(design, min_effect, len(means)).run(data)
    names = [str(g) for g in range(len(means))]
    looks = design.looks()
    for s in range(sweeps):
        decision, seeds, _ = simulate(lambda g, n: data[s, int(g), :n], names, design, min_effect)
        assert [CODES[p.verdict] for p in decision.pairs] == list(outcome.verdict[s])
        assert [seeds[g] for g in names] == list(outcome.seeds[s])
        assert [looks.index(p.resolved_at) if p.resolved_at else -1 for p in decision.pairs] == \
            list(outcome.resolved_at[s])
    return outcome


def test_the_vectorised_rule_decides_as_the_sweeper_does():
    """Every verdict (including "different, inside the margin"), every group's seeds at the end and every pair's
    first resolving look agree, over sweeps where pairs resolve at different looks."""
    outcome = assert_rule_decides_as_the_sweeper(Design(3, 1, 10, spending="kim_demets"), [0, 2, 0.5, 3], 2.0, 12, 1)
    assert len(set(outcome.verdict.ravel())) >= 3 and 0 < outcome.all_resolved.mean() < 1


@pytest.mark.slow
@pytest.mark.parametrize("design,means,min_effect", [
    (Design(3, 1, 20), [1.6, 1.6, 0, 0], 1.0), (Design(3, 2, 15, spending="pocock"), [0, 0.3, 2.5], 1.5)])
def test_the_vectorised_rule_decides_as_the_sweeper_does_on_the_design_cases(design, means, min_effect):
    assert_rule_decides_as_the_sweeper(design, means, min_effect, 40, 5)


def test_resolved_at_is_the_first_resolving_look_and_no_spread_never_resolves():
    rng = np.random.default_rng(4)
    design = Design(3, 1, 12)
    values = {"a": 3 + rng.normal(0, 1, 12), "b": rng.normal(0, 1, 12), "same": np.full(12, 0.5),
              "same2": np.full(12, 0.5)}
    decision = Sequential(design, 0.5).decide(values)
    first = {(p.a, p.b): p.resolved_at for p in decision.pairs}
    a_b = first[("a", "b")]
    assert a_b is not None and a_b < 12
    before = Sequential(design, 0.5).decide({g: v[:a_b - 1] for g, v in values.items()})
    assert next(p for p in before.pairs if (p.a, p.b) == ("a", "b")).verdict == UNRESOLVED
    same = next(p for p in decision.pairs if (p.a, p.b) == ("same", "same2"))
    assert same.no_spread and same.verdict == UNRESOLVED and same.resolved_at is None


def test_the_forecast_is_certain_when_done_and_says_what_it_takes_otherwise():
    rng = np.random.default_rng(2)
    design = Design(3, 1, 30)
    clear = {"a": 5 + rng.normal(0, 1, 30), "b": rng.normal(0, 1, 30)}
    assert forecast(clear, design, 1.0, futures=50).line() == "none: every pair is resolved"
    readme = {g: m + rng.normal(0, 1, 10) for g, m in zip(("r20", "r32", "r44", "r56"), (1.6, 1.6, 0, 0))}
    ahead = forecast(readme, design, 1.0, seconds_per_run=90, futures=300)
    assert 0.2 < ahead.chance <= 1 and ahead.runs_median <= ahead.runs_q80 <= 4 * 20
    assert ahead.minutes_median == pytest.approx(ahead.runs_median * 1.5)
    assert ahead.line().startswith(f"{100 * ahead.chance:.0f}% chance that every pair is resolved within 30 seeds")
    assert f"about {ahead.runs_median} more runs (80%: {ahead.runs_q80})" in ahead.line()


def test_a_low_chance_says_so_and_what_would_make_it_reachable():
    rng = np.random.default_rng(3)
    tight = {g: m + rng.normal(0, 1, 4) for g, m in zip("abc", (0.0, 0.5, 1.0))}
    ahead = forecast(tight, Design(3, 1, 12), 0.5, futures=200)
    assert ahead.chance < 0.5
    assert "that is low:" in ahead.line() and "max_seeds=24 gives" in ahead.line() and "min_effect=1 gives" in \
        ahead.line()


def test_the_sequential_verdict_tells_unresolved_pairs_their_chance_and_the_sweep_what_is_left():
    rng = np.random.default_rng(6)
    values = {g: m + rng.normal(0, 0.01, 6) for g, m in zip(("r20", "r56", "r32"), (0.95, 0.93, 0.948))}
    verdict = sequential_verdict(values, Design(3, 1, 30), 0.01, "test_accuracy", {"r20": 60.0, "r56": 60.0,
                                                                                    "r32": 60.0})
    lines = verdict.lines()
    assert any(line.startswith("  still needed: ") and "chance that every pair is resolved" in line for line in lines)
    unresolved = [line for line in lines if "no difference detected" in line]
    assert unresolved and all("% of the forecast's futures" in line for line in unresolved)
    assert all(row["seeds_needed"] is None for row in verdict.rows())
