"""The seeds-until-resolved decision (compare/sequential.py) driven by synthetic per-seed results: no training.

Each simulation draws every group's per-seed values up front with a fixed RNG and lets the sweep's own loop
(``simulate``: decide, stop or bring the unresolved groups to their next look) see them round by round.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import multivariate_normal, nct, norm, t

from resnet_lab.compare.rule import DIFFERENT as DIFFERENT_CODE
from resnet_lab.compare.rule import EQUAL as EQUAL_CODE
from resnet_lab.compare.rule import BatchRule
from resnet_lab.compare.sequential import (ALL_RESOLVED, DIFFERENT, SEED_BUDGET, UNRESOLVED, Design, Sequential,
                                           next_round, simulate, welch_tests)

LEVEL = 0.05


def false_rate(means, sd, design, min_effect, wrong_code, sims, seed, pairs=None):
    """The share of simulated sweeps (the sweeper's rule, ``rule.BatchRule``; ``test_forecast.py`` holds it to
    ``Sequential.decide``) that end with at least one verdict carrying ``wrong_code`` among ``pairs``."""
    rng = np.random.default_rng(seed)
    data = np.asarray(means, float)[None, :, None] + sd * rng.standard_normal((sims, len(means), design.max_seeds))
    verdict = BatchRule(design, min_effect, len(means)).run(data).verdict
    verdict = verdict if pairs is None else verdict[:, pairs]
    return float(((verdict & wrong_code) > 0).any(axis=1).mean())


def naive_rate(sims, seed, design):
    """The same looks without paying for them: Holm at the full level on each look's data (what a naive tool does)."""
    rng = np.random.default_rng(seed)
    false = 0
    for _ in range(sims):
        data = [rng.normal(0, 1, design.max_seeds) for _ in range(4)]
        for n in design.looks():
            p = sorted(welch_tests(data[i][:n], data[j][:n], 0.1)[0] for i in range(4) for j in range(i + 1, 4))
            if p[0] <= LEVEL / 6:
                false += 1
                break
    return false / sims


def test_the_design_spends_the_level_over_fixed_looks_and_little_early():
    design = Design(first=3, per_round=3, max_seeds=20)
    assert design.looks() == [3, 6, 9, 12, 15, 18, 20]
    shares = design.increments()
    assert math.isclose(sum(shares.values()), LEVEL)
    assert shares[3] < 1e-6 and shares[20] > 0.01  # O'Brien-Fleming: almost nothing at 3 seeds
    pocock = Design(3, 3, 20, spending="pocock").increments()
    assert math.isclose(sum(pocock.values()), LEVEL) and pocock[3] > 0.005
    assert design.look_at(2) is None and design.look_at(8) == 6 and design.next_look(18) == 20
    assert design.next_look(20) is None


def test_family_wise_false_different_rate_over_all_rounds_spends_the_level():
    """Four equal groups, looks at 3, 6, ..., 30 seeds: the chance of any false "different" is the level, spent
    (the union bound over looks spent a fifth of it); the same looks taken naively (Holm at 5% on each look)
    exceed it, so the simulation can tell the two apart. 4,000 sweeps: binomial sd 0.0034."""
    design = Design(first=3, per_round=3, max_seeds=30)
    rate = false_rate([0, 0, 0, 0], 1.0, design, 0.1, DIFFERENT_CODE, sims=4000, seed=1)
    assert 0.03 <= rate <= LEVEL + 0.008, rate
    assert naive_rate(200, 1, design) > LEVEL  # the inflation the design pays for is real


def test_family_wise_false_equal_rate_over_all_rounds_stays_at_the_level():
    """Groups one margin apart (every pair's truth on the edge of "practically equal"): a false "practically
    equal" over all rounds at most at the level."""
    design = Design(first=3, per_round=3, max_seeds=30)
    rate = false_rate([0, 1, 2, 3], 1.0, design, 1.0, EQUAL_CODE, sims=4000, seed=2)
    assert rate <= LEVEL + 0.008, rate
    edge = false_rate([1, 0, 0, 0], 1.0, Design(3, 1, 30), 1.0, EQUAL_CODE, sims=4000, seed=5, pairs=[0, 1, 2])
    assert 0.02 <= edge <= LEVEL + 0.008, edge


@pytest.mark.parametrize("spending,max_seeds", [("pocock", 6), ("obrien_fleming", 30), ("kim_demets", 10)])
def test_welch_at_three_seeds_keeps_the_level_through_its_p_value(spending, max_seeds):
    """Looks from 3 seeds a group, Welch's t carried to the boundaries' scale through its p-value: the chance of
    a false "different" stays at the level even where the first looks spend much of it (Pocock, 3 to 6 seeds).
    20,000 sweeps of one pair: binomial sd 0.0015."""
    design = Design(first=3, per_round=1, max_seeds=max_seeds, spending=spending)
    rate = false_rate([0, 0], 1.0, design, 0.5, DIFFERENT_CODE, sims=20_000, seed=6)
    assert 0.035 <= rate <= LEVEL + 0.004, rate


def predicted_stops(design, effect, sd):
    """P(resolved as different by each look) from the design's boundaries (held to published values in
    ``test_boundaries.py``) and no simulation.

    Look j rejects when |T_j| exceeds the t quantile with the tail of its z boundary (df 2n - 2). Marginally T_j is
    noncentral t with noncentrality effect / (sd sqrt(2/n)); each bound is moved to the normal bound that has
    the same marginal chance, and the looks' statistics are taken as jointly normal with corr sqrt(n_i/n_j), the
    Brownian-motion structure of group-sequential designs (Jennison & Turnbull 2000, ch. 3)."""
    looks = design.looks()
    z_bounds = design.boundaries(1.0, 2)
    means = np.array([effect / (sd * math.sqrt(2 / n)) for n in looks])
    bounds = []
    for zb, n, mu in zip(z_bounds, looks, means):
        c, df = t.isf(norm.sf(zb), 2 * n - 2), 2 * n - 2
        p = nct.sf(c, df, mu) + nct.cdf(-c, df, mu)
        bounds.append(brentq(lambda z: norm.sf(z - mu) + norm.cdf(-z - mu) - p, 0.01, 40) if p > 1e-12 else 40.0)
    cov = np.array([[math.sqrt(min(a, b) / max(a, b)) for b in looks] for a in looks])
    stopped = []
    for j in range(1, len(looks) + 1):
        c = np.array(bounds[:j])
        inside = multivariate_normal(means[:j], cov[:j, :j]).cdf(c, lower_limit=-c) if j > 1 else \
            norm.cdf(c[0] - means[0]) - norm.cdf(-c[0] - means[0])
        stopped.append(1 - inside)
    return np.array(stopped)


def test_with_a_real_difference_it_stops_early_as_often_as_the_design_predicts():
    """Two groups 0.72 sd apart, looks at 5, 10, ..., 30 seeds: the share of sweeps resolved by each look is within
    0.03 of the design's prediction (4,000 sweeps: at most 0.008 Monte Carlo sd)."""
    design, effect = Design(first=5, per_round=5, max_seeds=30), 0.72
    predicted = predicted_stops(design, effect, 1.0)
    rng = np.random.default_rng(3)
    data = np.array([effect, 0.0])[None, :, None] + rng.standard_normal((4000, 2, 30))
    outcome = BatchRule(design, 1e-9, 2).run(data)
    at = np.where(outcome.all_resolved, outcome.seeds[:, 0], np.inf)
    observed = np.array([np.mean(at <= n) for n in design.looks()])
    assert np.all(np.abs(observed - predicted) <= 0.03), (observed.round(3), predicted.round(3))
    assert 0.1 < observed[-2] < observed[-1]  # it does stop early, and the last look still adds


def test_a_resolved_pair_stays_resolved_and_the_verdict_is_a_function_of_the_data():
    rng = np.random.default_rng(4)
    data = {"a": rng.normal(2, 1, 30), "b": rng.normal(0, 1, 30), "c": rng.normal(0, 1, 30)}
    design = Design(3, 3, 30)
    before = None
    for n in design.looks():
        decision = Sequential(design, 0.5).decide({g: v[:n] for g, v in data.items()})
        again = Sequential(design, 0.5).decide({g: v[:n] for g, v in data.items()})  # a resume computes the same
        assert [p.verdict for p in decision.pairs] == [p.verdict for p in again.pairs]
        if before is not None:
            for old, new in zip(before.pairs, decision.pairs):
                assert old.verdict == UNRESOLVED or new.verdict != UNRESOLVED, (n, old, new)
        before = decision
    a_b = decision.pairs[0]
    assert a_b.verdict == DIFFERENT and a_b.ci_low < a_b.diff < a_b.ci_high and a_b.resolved_at <= 30


def test_only_groups_of_unresolved_pairs_get_seeds_and_the_budget_stops_it():
    design = Design(3, 3, 9)
    data = {"a": np.full(9, 5.0) + np.arange(9) * 1e-3, "b": np.arange(9) * 1e-3, "c": np.arange(9) * 1e-3 + 1e-4}
    decision = Sequential(design, 0.01).decide({g: v[:3] for g, v in data.items()})
    assert next_round(decision, {"a": 3, "b": 3, "c": 3}, design) == {g: 6 for g in decision.unresolved_groups}
    _, seeds, reason = simulate(lambda g, n: data[g][:n], list(data), design, 0.01)
    assert reason in (ALL_RESOLVED, SEED_BUDGET) and max(seeds.values()) <= 9


@pytest.mark.parametrize("first,per_round,max_seeds", [(1, 1, 5), (3, 0, 5), (3, 1, 2)])
def test_a_design_that_cannot_work_is_refused(first, per_round, max_seeds):
    with pytest.raises(ValueError, match="first >= 2"):
        Design(first, per_round, max_seeds)
