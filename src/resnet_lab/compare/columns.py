"""The columns of a comparison table and how runs can be grouped: what compare prints and validation checks."""

from __future__ import annotations

from typing import List, Sequence

LEADING = ("run", "status", "preset", "depth", "params", "flops")  # every table starts with these
TRAILING = ("train_seconds", "images_per_s")  # ... and ends with these; the chosen metrics go between
GROUPINGS = ("seed", "none")  # seed: a row per group of repeats; none: a row per run


def columns_for(metrics: Sequence[str]) -> List[str]:
    return [*LEADING, *metric_columns(metrics), *TRAILING]


def metric_columns(metrics: Sequence[str]) -> List[str]:
    """The chosen metrics that are not already a fixed column."""
    return [m for m in metrics if m not in LEADING + TRAILING]
