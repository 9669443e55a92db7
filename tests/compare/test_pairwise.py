"""The pairwise tests, held to their promises on synthetic data whose truth is set: calibration at 3 and 10
seeds, coverage, power, Holm, the new-data scope, and the verdict in words. A fixed RNG: nothing flakes."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from resnet_lab.compare.forecast import seeds_to_resolve
from resnet_lab.compare.pairwise import Group, compare_pairs, images_needed, paired_sampling_variance, welch
from resnet_lab.compare.verdict import DIFFERENT, EQUAL, SMALL, UNRESOLVED, Verdict, kind, order_line

REPEATS = 4000
# The share of p < 0.05 among REPEATS null tests has a binomial sd of 0.0034: 0.012 is 3.5 of them.
TOLERANCE = 0.012


def simulate(n: int, diff: float, sd_a: float, sd_b: float, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(0.9 + diff, sd_a, (REPEATS, n)), rng.normal(0.9, sd_b, (REPEATS, n))


@pytest.mark.parametrize("n", [3, 10])
@pytest.mark.parametrize("sd_b", [0.01, 0.03], ids=["equal-spread", "unequal-spread"])
def test_no_real_difference_gives_false_verdicts_at_most_5_percent_and_intervals_cover_95(n, sd_b):
    a, b = simulate(n, 0.0, 0.01, sd_b, seed=n)
    results = [welch(x, y) for x, y in zip(a, b)]
    false_different = np.mean([r[5] < 0.05 for r in results])
    covered = np.mean([r[3] <= 0.0 <= r[4] for r in results])
    assert false_different <= 0.05 + TOLERANCE
    # Welch's interval is at least as wide as it must be: at 3 seeds and unequal spreads a little wider.
    assert 0.95 - TOLERANCE <= covered <= 0.98


@pytest.mark.parametrize("n", [3, 10])
def test_a_real_difference_is_found_as_often_as_the_power_calculation_says(n):
    """At 10 seeds as predicted; at 3, Welch's test (whose degrees of freedom are estimated) finds up to a
    tenth fewer than the pooled t-test's power function says: the price of not assuming equal spreads."""
    from statsmodels.stats.power import TTestIndPower

    sd, diff = 0.01, 0.015 if n == 10 else 0.03
    a, b = simulate(n, diff, sd, sd, seed=100 + n)
    found = np.mean([welch(x, y)[5] < 0.05 for x, y in zip(a, b)])
    predicted = TTestIndPower().power(effect_size=diff / sd, nobs1=n, alpha=0.05, ratio=1.0)
    assert predicted - (0.03 if n == 10 else 0.12) <= found <= predicted + 0.02
    covered = np.mean([(r := welch(x, y))[3] <= diff <= r[4] for x, y in zip(a, b)])
    assert 0.95 - TOLERANCE <= covered <= 0.98


def test_welch_and_the_equivalence_test_agree_with_scipy_and_statsmodels():
    from statsmodels.stats.weightstats import ttost_ind

    a, b = np.array([0.91, 0.93, 0.94]), np.array([0.88, 0.90, 0.89, 0.87])
    diff, se, df, low, high, p, p_equal = welch(a, b, min_effect=0.05)
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert p_equal == pytest.approx(ttost_ind(a, b, -0.05, 0.05, usevar="unequal")[0])
    assert (low, high) == pytest.approx(diff + np.array([-1, 1]) * stats.t.ppf(0.975, df) * se)


def test_holm_adjusts_over_all_pairs_as_worked_by_hand():
    rng = np.random.default_rng(7)
    groups = [Group(name, rng.normal(mean, 0.01, 4)) for name, mean in (("r20", 0.95), ("r32", 0.94), ("r44", 0.92))]
    pairs = compare_pairs(groups, "test_accuracy", min_effect=0.01)
    raw = [p.test_set.p for p in pairs]
    order = np.argsort(raw)  # Holm: the k-th smallest times (m - k + 1), kept non-decreasing, capped at 1
    by_hand, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, raw[i] * (3 - rank)))
        by_hand[i] = running
    assert [p.test_set.p_holm for p in pairs] == pytest.approx(by_hand)
    assert [(p.a, p.b) for p in pairs] == [("r20", "r32"), ("r20", "r44"), ("r32", "r44")]


def test_the_new_data_scope_adds_the_paired_test_sampling_variance_and_covers_the_population_difference():
    """Test sets drawn from a population where A is right on 92% of images and B on 91.4%, the two
    discordant on about a tenth: the interval over the runs' own test set (seed variance only) misses the
    population difference far more often than 5%; the new-data interval covers it about 95% of the time."""
    rng = np.random.default_rng(11)
    images, seeds, repeats, flip = 360, 3, 1000, 0.005
    truth = (1 - 2 * flip) * (0.92 - (0.7 * 0.92 + 0.3 * 0.9))
    covered_here = covered_new = 0
    for _ in range(repeats):
        right_a = rng.random(images) < 0.92  # which images each trained model gets right, seed aside
        right_b = np.where(rng.random(images) < 0.7, right_a, rng.random(images) < 0.9)
        outcomes_a = right_a ^ (rng.random((seeds, images)) < flip)  # the seeds differ on a few images
        outcomes_b = right_b ^ (rng.random((seeds, images)) < flip)
        a, b = outcomes_a.mean(1), outcomes_b.mean(1)
        here = welch(a, b)
        extra = paired_sampling_variance(outcomes_a, outcomes_b)
        new = welch(a, b, extra, images - 1)
        covered_here += here[3] <= truth <= here[4]
        covered_new += new[3] <= truth <= new[4]
    assert covered_here / repeats < 0.7  # it misses the population difference in a third of test sets or more
    assert abs(covered_new / repeats - 0.95) <= 0.025  # 1000 repeats: binomial sd 0.007

    pair = compare_pairs([Group("A", a, outcomes_a, "s"), Group("B", b, outcomes_b, "s")], "test_accuracy", 0.01)[0]
    d = outcomes_a.mean(0) - outcomes_b.mean(0)
    extra = paired_sampling_variance(outcomes_a, outcomes_b)
    noise = (outcomes_a.var(0, ddof=1) / seeds + outcomes_b.var(0, ddof=1) / seeds).mean()
    assert extra == pytest.approx(max(d.var(ddof=1) - noise, 0) / images)  # the seeds' own noise counted once
    assert pair.new_data.se ** 2 == pytest.approx(pair.test_set.se ** 2 + extra)


def test_seeds_needed_count_holm_and_the_predictive_chance():
    """A plain sweep's advice: the seeds at which the pair resolves with probability 0.8 at Holm's level. Where the
    difference is clearly large few seeds do; at half the margin more; the more pairs Holm still counts, the more
    seeds."""
    base = dict(var_a=1.0, var_b=1.0, n_a=3, n_b=3, min_effect=1.0, level_equal=0.05)
    one = seeds_to_resolve(2.0, level_different=0.05, **base)
    six = seeds_to_resolve(2.0, level_different=0.05 / 6, **base)
    assert 3 <= one < six <= 60
    assert seeds_to_resolve(0.5, level_different=0.05, **base) > six
    # Equivalence at a true difference of 0 needs, from the normal approximation, about 2 sd² (z(0.95) + z(0.9))²;
    # predicting from an estimate of 0 at 1,000 seeds' precision gives nearly that.
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.9)
    near = seeds_to_resolve(0.0, 1.0, 1.0, 1000, 1000, 1.0, 1e-9, 0.05)
    assert near == 1000 or abs(near - 2 * z ** 2) <= 3
    # A test set's own sampling variance can leave no room that seeds could fill; more images can.
    assert seeds_to_resolve(0.0, 1e-4, 1e-4, 3, 3, 0.01, 0.05, 0.05, fixed_var=0.01 ** 2) is None
    assert images_needed(0.01, per_image_var=0.05) == math.ceil(0.05 * (z / 0.01) ** 2)


def test_on_new_data_a_small_test_set_is_what_stops_a_verdict_and_the_advice_says_so():
    rng = np.random.default_rng(2)
    right = rng.random(100) < 0.9
    other = np.where(rng.random(100) < 0.5, right, rng.random(100) < 0.9)  # B right on other images than A
    outcomes_a = right ^ (rng.random((10, 100)) < 0.02)
    outcomes_b = other ^ (rng.random((10, 100)) < 0.02)
    groups = [Group("r20", outcomes_a.mean(1), outcomes_a, "s"), Group("r32", outcomes_b.mean(1), outcomes_b, "s")]
    line = verdict_for(groups, scope="new_data").lines()[1]
    assert "on new data no number of seeds tells ±1 point apart with 100 test images: that takes " in line


def verdict_for(groups, min_effect=0.01, scope="test_set"):
    pairs = compare_pairs(groups, "test_accuracy", min_effect)
    return Verdict("test_accuracy", scope, min_effect, pairs, [], {g.name: 60.0 for g in groups})


def test_each_kind_of_verdict_reads_as_a_person_would_say_it():
    rng = np.random.default_rng(3)
    noise = lambda n, sd: rng.normal(0, sd, n)  # noqa: E731
    deep, shallow = Group("r56", 0.95 + noise(10, 0.004)), Group("r20", 0.92 + noise(10, 0.004))
    twin = Group("r32", 0.9202 + noise(40, 0.002))
    alike = Group("r20b", 0.9200 + noise(40, 0.002))
    verdict = verdict_for([deep, shallow])
    (pair,) = verdict.pairs
    assert kind(pair.test_set) == DIFFERENT
    assert re.match(r"  r56 > r20 by \d\.\d points \[\d\.\d, \d\.\d\], Holm p ", verdict.lines()[1])
    assert "Holm p < 0.001" in verdict.lines()[1]
    equal = verdict_for([twin, alike])
    assert kind(equal.pairs[0].test_set) == EQUAL
    assert "r32 ≈ r20b: the difference, " in equal.lines()[1] and "inside the ±1-point margin" in equal.lines()[1]
    small = verdict_for([Group("a", 0.9230 + noise(40, 0.001)), Group("b", 0.9200 + noise(40, 0.001))])
    assert kind(small.pairs[0].test_set) == SMALL
    assert "a real difference, inside the ±1-point margin" in small.lines()[1]


def test_an_unresolved_pair_says_what_resolving_it_would_take_and_the_order_waits_for_every_pair():
    verdict = verdict_for([Group("r20", [0.93, 0.95, 0.94]), Group("r32", [0.94, 0.93, 0.96])])
    line = verdict.lines()[1]
    assert line.startswith("  r20 vs r32: no difference detected, ")
    p = verdict.pairs[0]
    seeds = seeds_to_resolve(p.test_set.diff, p.var_a, p.var_b, 3, 3, 0.01, 0.05, 0.05)
    assert f"resolving it at a 1-point margin needs about {seeds} seeds a group" in line
    minutes = round(((seeds - 3) * 60 * 2) / 60)
    assert f"(about {minutes} min more training at these runs' speed)" in line
    assert order_line(verdict.pairs, "test_set") is None and verdict.lines()[-1] == "  0 of 1 pairs resolved"
    assert verdict.rows()[0]["verdict"] == UNRESOLVED and verdict.rows()[0]["seeds_needed"] == seeds


def test_when_every_pair_is_resolved_the_order_is_one_line():
    rng = np.random.default_rng(5)
    groups = [Group(name, mean + rng.normal(0, 0.002, 30)) for name, mean in
              (("r20", 0.900), ("r32", 0.950), ("r44", 0.9502))]
    verdict = verdict_for(groups)
    assert "  order: r44 ≈ r32 > r20" in verdict.lines() or "  order: r32 ≈ r44 > r20" in verdict.lines()
    assert verdict.short().startswith("test_accuracy on this test set: r")


def test_groups_that_cannot_be_tested_are_named_not_dropped():
    one = Verdict("test_accuracy", "test_set", 0.01, compare_pairs([Group("r20", [0.9, 0.91])], "test_accuracy", 0.01),
                  ["r56"], {})
    assert one.lines() == ["test_accuracy: no two groups with two or more values each, so no pairwise test",
                           "test_accuracy, no test (one run; more seeds give one, e.g. seed=1,2,3): r56"]
    missing = compare_pairs([Group("a", [None, None]), Group("b", [0.8, 0.81])], "test_accuracy", 0.01)
    assert missing == []
    nan = compare_pairs([Group("a", [0.9, float("nan"), 0.92]), Group("b", [0.8, 0.81, None])], "test_accuracy", 0.01)
    assert (nan[0].n_a, nan[0].n_b) == (2, 2)
    unpaired = compare_pairs([Group("a", [0.9, 0.92], np.ones((2, 5), bool), "digits n=5 abc"),
                              Group("b", [0.8, 0.81], np.ones((2, 6), bool), "digits n=6 def")], "test_accuracy", 0.01)
    assert unpaired[0].new_data is None and unpaired[0].new_data_note.startswith("scored on different test splits")
    loss = Verdict("val_loss", "test_set", 0.01, compare_pairs([Group("a", [0.3, 0.31]), Group("b", [0.4, 0.41])],
                                                                "val_loss", 0.01), [], {})
    assert "  val_loss has no per-example outcomes: seed-level tests only" in loss.lines()
    fallback = verdict_for([Group("a", [0.9, 0.92]), Group("b", [0.8, 0.81])], scope="new_data")
    assert "  on this test set only where no per-example outcomes logged" in fallback.lines()


def test_new_data_counts_each_images_seed_noise_once_covering_95_and_reading_p_a_beats_b_right():
    """360 test images drawn from a population (image easiness shared by A and B, each model its own per-image
    deviation, A a little better), 10 seeds a group with a seed-wide shift and per-image Bernoulli noise; the
    truth by simulation: the population difference, and how often a run of A beats a run of B on a new test set.
    Over 600 repeats the new-data interval covers it 95 ± 2% (it covered 98-99% when the seeds' per-image noise
    was counted twice) and P(A > B) reads it within 0.03 on average."""
    from scipy.special import ndtr

    rng = np.random.default_rng(21)
    images, seeds, repeats = 360, 10, 600

    def models(n):
        easy = rng.normal(1.2, 1, n)
        return easy + rng.normal(0, 0.5, n) + 0.12, easy + rng.normal(0, 0.5, n)

    def runs(latent, count):
        return latent[None, :] + rng.normal(0, 0.1, (count, 1)) + rng.standard_normal((count, len(latent))) > 0

    a_pop, b_pop = models(100_000)
    shift = rng.normal(0, 0.1, (50, 1))
    truth = float((ndtr(a_pop[None, :] + shift) - ndtr(b_pop[None, :] + shift)).mean())
    beats = []
    for _ in range(10):  # 10,000 new test sets, a run of each on it
        la, lb = (x.reshape(1000, images) for x in models(images * 1000))
        ya = la + rng.normal(0, 0.1, (1000, 1)) + rng.standard_normal(la.shape) > 0
        yb = lb + rng.normal(0, 0.1, (1000, 1)) + rng.standard_normal(lb.shape) > 0
        d = ya.mean(1) - yb.mean(1)
        beats.append((d > 0).mean() + 0.5 * (d == 0).mean())
    truth_beats = float(np.mean(beats))

    covered = covered_twice = 0
    read = []
    for _ in range(repeats):
        la, lb = models(images)
        outcomes_a, outcomes_b = runs(la, seeds), runs(lb, seeds)
        a, b = outcomes_a.mean(1), outcomes_b.mean(1)
        pair = compare_pairs([Group("A", a, outcomes_a, "s"), Group("B", b, outcomes_b, "s")], "test_accuracy",
                             0.01)[0]
        covered += pair.new_data.ci_low <= truth <= pair.new_data.ci_high
        read.append(pair.new_data.prob_a_beats_b)
        d = outcomes_a.mean(0) - outcomes_b.mean(0)
        twice = welch(a, b, d.var(ddof=1) / images, images - 1)
        covered_twice += twice[3] <= truth <= twice[4]
    assert abs(covered / repeats - 0.95) <= 0.02, covered / repeats
    assert covered_twice / repeats > 0.97  # what counting the noise twice did
    assert abs(np.mean(read) - truth_beats) <= 0.03, (np.mean(read), truth_beats)


def test_no_spread_in_both_groups_cannot_be_tested_and_equal_reads_its_90_percent_interval():
    verdict = verdict_for([Group("a", [0.93, 0.93, 0.93]), Group("b", [0.90, 0.90, 0.90])])
    assert verdict.lines()[1] == "  a vs b: cannot be tested: every seed gave the same value"
    assert kind(verdict.pairs[0].test_set) == UNRESOLVED and verdict.pairs[0].test_set.p_holm == 1.0
    rng = np.random.default_rng(8)
    equal = verdict_for([Group("r32", 0.9202 + rng.normal(0, 0.002, 40)),
                         Group("r20", 0.92 + rng.normal(0, 0.002, 40))])
    estimate = equal.pairs[0].test_set
    half = stats.t.ppf(0.95, estimate.df) * estimate.se
    span = f"{100 * (estimate.diff - half):+.1f} to {100 * (estimate.diff + half):+.1f} points (90% interval"
    assert span in equal.lines()[1]


def test_one_holm_family_per_verdict_on_new_data_with_pairs_lacking_outcomes():
    """Three groups, one without per-example outcomes: on new data its two pairs fall back to the seed-level test,
    and Holm runs over all three pairs together, not over two families."""
    rng = np.random.default_rng(4)
    right = rng.random(200) < 0.9
    with_outcomes = [Group(name, (o := right ^ (rng.random((5, 200)) < 0.05)).mean(1), o, "s") for name in "ab"]
    groups = [*with_outcomes, Group("c", rng.normal(0.8, 0.01, 5))]
    pairs = compare_pairs(groups, "test_accuracy", 0.01)
    from resnet_lab.compare.pairwise import scope_of

    family = [scope_of(p, "new_data") for p in pairs]
    raw = np.array([e.p for e in family])
    order = np.argsort(raw)
    expected = np.maximum.accumulate(raw[order] * (3 - np.arange(3)))
    assert [family[i].p_holm for i in order] == pytest.approx(np.minimum(expected, 1))
    assert pairs[1].fallback is not None and pairs[1].new_data is None
