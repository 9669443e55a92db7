"""The sweeper's decision rule (``sequential.Sequential.decide`` with ``next_round`` and ``stop_reason``) run on many
sweeps at once, for the forecast of what is left and for the design calculator (``benchmarks/sequential_design.py``).

Each sweep's groups have their per-seed values laid out in seed order; the rule looks at n_1, n_2, ... seeds a
group, brings only the groups of unresolved pairs to the next look, and stops when every pair is resolved or at
the budget. A pair is tested at a look when both its groups reached it, as ``decide`` does. Decisions use Holm's
step-down on integer crossing levels (the largest v whose weight-1/v boundary a pair crossed at some look),
which is the same decision as ``decide``'s Holm on the smallest crossing weight; a test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resnet_lab.compare.sequential import Design, holm_by_weights
from resnet_lab.compare.testing import welch_summary, z_of

UNRESOLVED, DIFFERENT, EQUAL, SMALL = 0, 1, 2, 3  # verdict codes: bit 1 "different", bit 2 "practically equal"


@dataclass(frozen=True)
class Outcome:
    """Where each of S sweeps ended: per pair (S, m) its verdict code and the look index it was resolved at (-1:
    never); per group (S, k) its seeds a group at the end; per sweep (S,) whether every pair was resolved and
    the look index it stopped at; and (S, looks, k) each group's seeds after each look (for a state mid-way)."""

    verdict: np.ndarray
    resolved_at: np.ndarray
    seeds: np.ndarray
    all_resolved: np.ndarray
    stop_look: np.ndarray
    seeds_by_look: np.ndarray

    @property
    def runs(self) -> np.ndarray:
        return self.seeds.sum(axis=-1)


class BatchRule:
    """The rule for ``groups`` groups (pairs in the order ``decide`` makes them: (0, 1), (0, 2), ..., (1, 2), ...)."""

    def __init__(self, design: Design, min_effect: float, groups: int) -> None:
        self.design, self.min_effect, self.groups = design, min_effect, groups
        self.pairs = [(i, j) for i in range(groups) for j in range(i + 1, groups)]
        self.first = np.array([i for i, _ in self.pairs], int)
        self.second = np.array([j for _, j in self.pairs], int)
        m = len(self.pairs)
        self.table_diff = np.stack([design.boundaries(1.0 / v, 2) for v in range(1, m + 1)])  # (v, look)
        self.table_equal = np.stack([design.boundaries(1.0 / v, 1) for v in range(1, m + 1)])

    def run(self, data: np.ndarray) -> Outcome:
        """``data``: (S, groups, seeds >= max_seeds) per-seed values, in seed order."""
        sweeps, k, _ = data.shape
        looks = self.design.looks()
        m = len(self.pairs)
        origin = data[:, :, :1]
        centred = data[:, :, :self.design.max_seeds] - origin  # sums of squares without cancellation
        total, squares = np.cumsum(centred, axis=2), np.cumsum(centred ** 2, axis=2)
        running = np.ones((sweeps, k), bool)
        stopped = np.zeros(sweeps, bool)
        seeds = np.zeros((sweeps, k), int)
        by_look = np.zeros((sweeps, len(looks), k), int)
        crossed_diff = np.zeros((sweeps, m), int)
        crossed_equal = np.zeros((sweeps, m), int)
        verdict = np.zeros((sweeps, m), int)
        resolved_at = np.full((sweeps, m), -1)
        stop_look = np.full(sweeps, len(looks) - 1)
        for j, n in enumerate(looks):
            seeds[running] = n
            by_look[:, j] = seeds
            live = np.flatnonzero(~stopped)  # only sweeps still going are tested
            active = running[live][:, self.first] & running[live][:, self.second]
            mean = total[live, :, n - 1] / n
            var = np.maximum(squares[live, :, n - 1] - n * mean ** 2, 0.0) / (n - 1)
            mean = mean + origin[live, :, 0]
            test = welch_summary(mean[:, self.first], var[:, self.first], n, mean[:, self.second],
                                 var[:, self.second], n, self.min_effect)
            z_diff = np.where(test.no_spread, -np.inf, z_of(test.p, 2))
            z_equal = np.where(test.no_spread, -np.inf, z_of(test.p_equal, 1))
            level_diff = (z_diff[..., None] >= self.table_diff[:, j]).sum(-1)  # boundaries rise with v
            level_equal = (z_equal[..., None] >= self.table_equal[:, j]).sum(-1)
            crossed_diff[live] = np.where(active, np.maximum(crossed_diff[live], level_diff), crossed_diff[live])
            crossed_equal[live] = np.where(active, np.maximum(crossed_equal[live], level_equal), crossed_equal[live])
            code = (holm_by_weights(crossed_diff[live], m) * DIFFERENT
                    + holm_by_weights(crossed_equal[live], m) * EQUAL)
            first = (code > 0) & (resolved_at[live] < 0)
            resolved_at[live] = np.where(first, j, resolved_at[live])
            verdict[live] = code
            open_pairs = code == UNRESOLVED
            needed = np.zeros((len(live), k), bool)
            for p, (a, b) in enumerate(self.pairs):
                needed[:, a] |= open_pairs[:, p]
                needed[:, b] |= open_pairs[:, p]
            ends = ~open_pairs.any(axis=1) | (j == len(looks) - 1)
            stop_look[live[ends]] = j
            stopped[live[ends]] = True
            running[live] = needed & ~ends[:, None]
            if stopped.all():
                by_look[:, j + 1:] = seeds[:, None, :]
                break
        return Outcome(verdict, resolved_at, seeds, ~(verdict == UNRESOLVED).any(axis=1), stop_look, by_look)
