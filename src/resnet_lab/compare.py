"""Compare training runs from MLflow: one table (depth, size, cost, metrics) and accuracy plots.

Used by ``resnet-lab-compare`` and by the sweep callback, which logs the same table and plots
to each sweep's parent run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from resnet_lab import tracking
from resnet_lab.errors import ConfigError, UserError
from resnet_lab.validation import validate_compare_config

log = logging.getLogger(__name__)

# Columns every table has, before and after the chosen metrics.
LEADING = ("run", "status", "preset", "depth", "params", "flops")
TRAILING = ("train_seconds", "images_per_s")
# Where each column's value lives in a run: params first (what the UI plots), then tags, then metrics.
SOURCES = {
    "depth": (("params", "arch.depth"), ("tags", "depth")),
    "params": (("params", "arch.params_total"), ("tags", "params_total")),
    "flops": (("params", "arch.flops"), ("tags", "flops")),
    "preset": (("tags", "preset"), ("params", "model.name")),
    "train_seconds": (("metrics", "train_seconds"),),
    "images_per_s": (("metrics", "train_images_per_s"),),
}
PLOTS = (  # file name, x column, axis label, log scale
    ("accuracy_vs_depth.png", "depth", "depth (weighted layers)", False),
    ("accuracy_vs_params.png", "params", "parameters", True),
    ("accuracy_vs_train_time.png", "train_seconds", "training time (s)", True),
)


def columns_for(metrics: Sequence[str]) -> List[str]:
    return [*LEADING, *[m for m in metrics if m not in LEADING + TRAILING], *TRAILING]


def row_of(run: Any, metrics: Sequence[str]) -> Dict[str, Any]:
    """One table row: numbers stay numbers (None where the run has no value)."""
    data = {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics}
    row: Dict[str, Any] = {"run": run.info.run_name, "run_id": run.info.run_id, "status": run.info.status}
    for column, sources in SOURCES.items():
        row[column] = next((_number(data[kind][key]) for kind, key in sources if key in data[kind]), None)
    for metric in metrics:
        row[metric] = run.data.metrics.get(metric)
    return row


def sort_rows(rows: List[Dict[str, Any]], key: str, descending: bool = False) -> List[Dict[str, Any]]:
    """Sort by one column; rows without a value go last whatever the direction."""
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: (r[key], r["run"] or ""), reverse=descending) + missing


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in ("run_id", *columns)} for row in rows])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["run_id", *columns])
        writer.writerows([[row.get(c, "") if row.get(c) is not None else "" for c in ("run_id", *columns)]
                          for row in rows])
        return out.getvalue().rstrip("\n")
    cells = [[_show(c, row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    align = [str.ljust if c in ("run", "status", "preset") else str.rjust for c in columns]
    lines = ["  ".join(a(c, w) for a, c, w in zip(align, columns, widths))]
    lines += ["  ".join(a(v, w) for a, v, w in zip(align, r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def plot(rows: Sequence[Mapping[str, Any]], metric: str, out_dir: Path) -> List[Path]:
    """PNG scatter plots of ``metric`` against depth, parameters and training time, one point per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, x_key, x_label, log_x in PLOTS:
        points = [(r[x_key], r[metric], r["run"]) for r in rows
                  if r.get(x_key) is not None and r.get(metric) is not None and not math.isnan(r[metric])]
        if not points:
            log.warning("no run has both %s and %s: %s not drawn", x_key, metric, name)
            continue
        figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=100)
        points.sort()
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        axes.plot(xs, ys, marker="o", linestyle="-" if x_key == "depth" else "none")
        for x, y, label in points:
            axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if log_x and min(xs) > 0:
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


def log_to_run(client: Any, run_id: str, runs: Sequence[Any], metrics: Sequence[str], plot_metric: str,
               sort: str = "depth") -> None:
    """Log the comparison of ``runs`` to one run (a sweep's parent): markdown, CSV and the plots."""
    import tempfile

    rows = sort_rows([row_of(r, metrics) for r in runs], sort)
    columns = columns_for(metrics)
    client.log_text(run_id, render(rows, columns, "markdown") + "\n", "comparison.md")
    client.log_text(run_id, render(rows, columns, "csv") + "\n", "comparison.csv")
    with tempfile.TemporaryDirectory() as tmp:
        for path in plot(rows, plot_metric, Path(tmp)):
            client.log_artifact(run_id, str(path), "plots")


def find_runs(client: Any, experiment: str, parent: Optional[str], tags: Mapping[str, str],
              status: Optional[str]) -> List[Any]:
    """Training runs of one experiment, optionally of one sweep (``parent``: a run id or ``latest``)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ConfigError("compare.experiment", experiment, "an experiment of the store: " + (", ".join(names) or "none yet"))
    ids = [found.experiment_id]
    filters = [f"tags.`{tracking.TAG_ROLE}` = 'train'"]
    if parent == "latest":
        sweeps = client.search_runs(ids, filter_string=f"tags.`{tracking.TAG_ROLE}` = 'sweep'",
                                    order_by=["attributes.start_time DESC"], max_results=1)
        if not sweeps:
            raise ConfigError("compare.parent", parent, f"a sweep's run id; experiment {experiment!r} has no sweep")
        parent = sweeps[0].info.run_id
    if parent is not None:
        filters.append(f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{_quote(parent)}'")
    filters += [f"tags.`{key}` = '{_quote(str(value))}'" for key, value in tags.items()]
    if status is not None:
        filters.append(f"attributes.status = '{status}'")
    runs, token = [], None
    while True:
        page = client.search_runs(ids, filter_string=" and ".join(filters), max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def compare(cfg: Any) -> str:
    """``resnet-lab-compare``: query, sort, render; writes the plots when ``compare.plot_dir`` is set."""
    c = cfg.compare
    metrics = list(c.metrics)
    columns = columns_for(metrics)
    validate_compare_config(cfg)
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tracking.check_reachable(uri)
    experiment = c.experiment or cfg.tracking.experiment
    runs = find_runs(tracking.client_for(uri), experiment, c.parent, dict(c.tags), c.status)
    if not runs:
        raise UserError(f"no training runs in experiment {experiment!r} of {tracking.redact_uri(uri)} match "
                        f"compare.parent={c.parent}, compare.tags={dict(c.tags)}, compare.status={c.status}")
    rows = sort_rows([row_of(r, metrics) for r in runs], c.sort, c.descending)
    if c.plot_dir is not None:
        out_dir = Path(c.plot_dir).expanduser()
        out_dir = out_dir if out_dir.is_absolute() else tracking.launch_dir() / out_dir
        for path in plot(rows, c.plot_metric, out_dir):
            log.info("wrote %s", path)
    return render(rows, columns, c.format)


def _number(text: Any) -> Any:
    if isinstance(text, (int, float)):
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in str(text) else value


def _show(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in ("params", "flops") and isinstance(value, (int, float)):
        return _human(value)
    if isinstance(value, float):
        return f"{value:.1f}" if column in TRAILING else f"{value:.4f}"
    return str(value)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
