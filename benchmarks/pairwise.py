"""How long the pairwise analysis takes at the size the comparison promises: 5 groups x 10 seeds x 10,000 test
examples, both scopes, Holm over the 10 pairs, the verdict in words (no MLflow: the statistics alone).

    python benchmarks/pairwise.py    # prints the median of 5 timings and the verdict it timed
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from resnet_lab.compare.pairwise import Group, compare_pairs
from resnet_lab.compare.verdict import Verdict

GROUPS, SEEDS, EXAMPLES = 5, 10, 10_000


def groups(rng: np.random.Generator):
    made = []
    for g in range(GROUPS):
        right = rng.random(EXAMPLES) < 0.90 + 0.005 * g  # each depth a little better than the last
        outcomes = right ^ (rng.random((SEEDS, EXAMPLES)) < 0.02)  # the seeds differ on a few examples
        made.append(Group(f"depth{20 + 12 * g}", outcomes.mean(axis=1), outcomes, "bench split"))
    return made


def main() -> None:
    data = groups(np.random.default_rng(0))
    timings, verdict = [], None
    for _ in range(5):
        started = time.perf_counter()
        pairs = compare_pairs(data, "test_accuracy", margin=0.01)
        verdict = Verdict("test_accuracy", "new_data", 0.01, pairs, [], {g.name: 600.0 for g in data})
        lines = verdict.lines()
        timings.append(time.perf_counter() - started)
    print(f"{GROUPS} groups x {SEEDS} seeds x {EXAMPLES:,} examples: {statistics.median(timings):.3f} s "
          f"(median of 5; min {min(timings):.3f}, max {max(timings):.3f})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
