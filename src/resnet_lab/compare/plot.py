"""PNG plots of a metric against depth, parameters and training time: a group at its mean with its
95% interval, its runs faint behind."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from resnet_lab.compare.stats import Summary

log = logging.getLogger(__name__)


PLOTS = (  # file name, x column, axis label, log scale
    ("accuracy_vs_depth.png", "depth", "depth (weighted layers)", False),
    ("accuracy_vs_params.png", "params", "parameters", True),
    ("accuracy_vs_train_time.png", "train_seconds", "training time (s)", True),
)


class Point(NamedTuple):
    x: float
    y: float
    low: Optional[float]  # the 95% interval, where the point is a group's mean
    high: Optional[float]
    label: str
    runs: List[Tuple[float, float]]  # a group's runs, drawn faintly behind its mean


def plot(rows: Sequence[Mapping[str, Any]], metric: str, out_dir: Path) -> List[Path]:
    """PNG plots of ``metric`` against depth, parameters and training time, one point per row.

    A group's point is its mean with its 95% interval as error bar (none for one run), its runs faint behind.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, x_key, x_label, log_x in PLOTS:
        points = sorted((p for p in (_point(r, x_key, metric) for r in rows) if p is not None),
                        key=lambda p: (p.x, p.y, p.label))
        if not points:
            log.warning("no run has both %s and %s: %s not drawn", x_key, metric, name)
            continue
        figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=100)
        _draw(axes, points, x_key == "depth")
        if log_x and min([p.x for p in points] + [x for p in points for x, _ in p.runs]) > 0:
            axes.set_xscale("log")
        axes.set_xlabel(x_label)
        axes.set_ylabel(metric)
        axes.set_title(f"{metric} vs {x_label.split(' (')[0]}")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(out_dir / name)
        plt.close(figure)
        written.append(out_dir / name)
    return written


def _point(row: Mapping[str, Any], x_key: str, metric: str) -> Optional[Point]:
    """Where a row goes on one plot; None if it lacks either value."""
    value, x = row.get(metric), row.get(x_key)
    if isinstance(value, Summary):
        runs = [(m[x_key], m[metric]) for m in row["members"] if _drawable(m.get(x_key), m.get(metric))]
        value_low_high = (value.mean, value.ci_low, value.ci_high)
    else:
        runs, value_low_high = [], (value, None, None)
    if not _drawable(x, value_low_high[0]):
        return None
    return Point(x, *value_low_high, str(row["run"]), runs)


def _drawable(x: Any, y: Any) -> bool:
    return x is not None and y is not None and not math.isnan(y)


def _draw(axes: Any, points: Sequence[Point], join: bool) -> None:
    """The runs faintly, then one marker per row (joined along depth), then the intervals."""
    runs = [run for p in points for run in p.runs]
    if runs:
        axes.scatter([x for x, _ in runs], [y for _, y in runs], s=16, color="tab:gray", alpha=0.45, zorder=1)
    axes.plot([p.x for p in points], [p.y for p in points], marker="o", linestyle="-" if join else "none", zorder=2)
    spread = [p for p in points if p.low is not None]
    if spread:
        axes.errorbar([p.x for p in spread], [p.y for p in spread], fmt="none", capsize=3, ecolor="tab:blue",
                      yerr=[[p.y - p.low for p in spread], [p.high - p.y for p in spread]], zorder=2)
    for p in points:
        axes.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(4, 4), fontsize=7)
