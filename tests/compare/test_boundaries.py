"""Exact group-sequential boundaries (compare/boundaries.py), held to published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from resnet_lab.compare.boundaries import boundaries, spending_function

FIVE_LOOKS = [0.2, 0.4, 0.6, 0.8, 1.0]


def test_ldbounds_obrien_fleming_type_boundaries_for_five_equal_looks():
    """R ldbounds' spending, alpha/2 a side: alpha(t) = 4 - 4 Phi(z_{1 - alpha/4} / sqrt(t)), two-sided 0.05."""
    spent = [4 * ndtr(-ndtri(1 - 0.05 / 4) / math.sqrt(t)) for t in FIVE_LOOKS]
    assert boundaries(FIVE_LOOKS, spent) == pytest.approx([4.8769, 3.3570, 2.6803, 2.2898, 2.0310], abs=6e-5)


def test_the_projects_obrien_fleming_type_boundaries_for_five_equal_looks():
    spent = spending_function("obrien_fleming", 0.05)
    assert boundaries(FIVE_LOOKS, [spent(t) for t in FIVE_LOOKS]) == pytest.approx(
        [4.3826, 3.0997, 2.5534, 2.2538, 2.0635], abs=6e-5)


def test_one_look_is_the_fixed_sample_test_and_a_weight_scales_the_spending():
    assert boundaries([1.0], [0.05])[0] == pytest.approx(1.959964, abs=1e-6)
    assert boundaries([1.0], [0.05], sided=1)[0] == pytest.approx(1.644854, abs=1e-6)
    spent = spending_function("pocock", 0.05)
    whole = boundaries(FIVE_LOOKS, [spent(t) for t in FIVE_LOOKS])
    third = boundaries(FIVE_LOOKS, [spent(t) / 3 for t in FIVE_LOOKS])
    assert np.all(third > whole)  # less level at every look: higher boundaries
    assert np.ptp(whole) < 0.06  # Pocock's are nearly flat


def test_looks_at_unequal_fractions_spend_exactly_their_share_by_simulation():
    """Looks at 3, 4, 7 and 12 of 12 seeds (a skipped look, a late one): the chance of crossing first at each look,
    from 400,000 Brownian paths, is the spending function's increment."""
    fractions = np.array([3, 4, 7, 12]) / 12
    spent = spending_function("obrien_fleming", 0.05)
    cumulative = [spent(t) for t in fractions]
    c = boundaries(fractions, cumulative)
    rng = np.random.default_rng(0)
    steps = rng.standard_normal((400_000, 4)) * np.sqrt(np.diff(np.concatenate([[0], fractions])))
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    crossed = np.abs(z) >= c
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    shares = [np.mean(first == k) for k in range(4)]
    assert shares == pytest.approx(np.diff(np.concatenate([[0], cumulative])), abs=0.0012)


@pytest.mark.parametrize("bad", [[0.5, 0.4], [0.0, 1.0], [0.5, 1.2]])
def test_fractions_must_increase_within_zero_and_one(bad):
    with pytest.raises(ValueError, match="information fractions must increase"):
        boundaries(bad, [0.01, 0.05])
