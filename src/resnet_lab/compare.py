"""Compare training runs from MLflow: one table (depth, size, cost, metrics) and accuracy plots.

Repeats of one configuration (runs that differ only in ``seed``) form a group by default: one row with
n and each metric's mean, sd and 95% interval (see ``stats.py``), then a note naming the groups whose
intervals overlap, which the data do not order. Used by ``resnet-lab-compare`` and by the sweep
callback, which logs the same tables and plots to each sweep's parent run.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from resnet_lab import identity, tracking
from resnet_lab.compare_columns import LEADING, TRAILING, columns_for, metric_columns
from resnet_lab.errors import ConfigError, UserError
from resnet_lab.stats import CONFIDENCE, Summary, intervals_overlap, mean_of, summarize
from resnet_lab.validation import validate_compare_config

log = logging.getLogger(__name__)

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
SHARED = ("preset", "depth", "params", "flops")  # the same for every run of a group
RAW_STATS = ("mean", "sd", "ci_low", "ci_high")  # a grouped metric's CSV columns and JSON keys
# Flat param names (and prefixes) that do not change what a run computes: identity.py's rule, plus the seed.
NOT_GROUPING = ("seed", *identity.NOT_IDENTITY, *(f"trainer.{k}" for k in identity.NOT_IDENTITY_TRAINER),
                *(f"data.{k}" for k in identity.NOT_IDENTITY_DATA),
                *(f"model.{k}" for k in identity.NOT_IDENTITY_MODEL))
SEED_IN_NAME = re.compile(r"-seed-?\d+(?=-|$)")  # what naming.run_name adds for a swept seed
MORE_SEEDS = "seed=1,2,3"  # the override the note suggests


def row_of(run: Any, metrics: Sequence[str]) -> Dict[str, Any]:
    """One table row: numbers stay numbers (None where the run has no value)."""
    data = {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics}
    row: Dict[str, Any] = {"run": run.info.run_name, "run_id": run.info.run_id, "status": run.info.status,
                           "group": run.data.tags.get(tracking.TAG_GROUP)}
    for column, sources in SOURCES.items():
        row[column] = next((_number(data[kind][key]) for kind, key in sources if key in data[kind]), None)
    for metric in metrics:
        row[metric] = run.data.metrics.get(metric)
    return row


def group_key(run: Any) -> Tuple[str, Any]:
    """Runs with one key repeat one configuration: the group hash training tags, else the params that matter."""
    if tracking.TAG_GROUP_HASH in run.data.tags:
        return ("group_hash", run.data.tags[tracking.TAG_GROUP_HASH])
    if not run.data.params:
        return ("run", run.info.run_id)
    return ("params", tuple(sorted((k, v) for k, v in run.data.params.items() if _shapes_result(k))))


def group_rows(runs: Sequence[Any], metrics: Sequence[str]) -> List[Dict[str, Any]]:
    """One row per group of repeats, in the order of each group's first run."""
    members: Dict[Tuple[str, Any], List[Dict[str, Any]]] = {}
    seen = set()
    for run in runs:
        if run.info.run_id not in seen:  # a run listed twice must not count twice
            seen.add(run.info.run_id)
            members.setdefault(group_key(run), []).append(row_of(run, metrics))
    return [_group_row(rows, metrics) for rows in members.values()]


def common_name(names: Sequence[Optional[str]]) -> Optional[str]:
    """The name the runs share once their seed part is dropped; else the first run's name."""
    bare = {SEED_IN_NAME.sub("", name or "") for name in names}
    return bare.pop() if len(bare) == 1 and "" not in bare else names[0]


def rows_for(runs: Sequence[Any], metrics: Sequence[str], group: str, sort: str,
             descending: bool = False) -> List[Dict[str, Any]]:
    """The table's rows, one per run (``group=none``) or per group of repeats (``group=seed``), sorted."""
    rows = group_rows(runs, metrics) if group == "seed" else [row_of(r, metrics) for r in runs]
    return sort_rows(rows, sort, descending)


def sort_rows(rows: List[Dict[str, Any]], key: str, descending: bool = False) -> List[Dict[str, Any]]:
    """Sort by one column (a group's metric by its mean); rows without a value go last whatever the direction."""
    present = [r for r in rows if _sort_value(r, key) is not None]
    missing = [r for r in rows if _sort_value(r, key) is None]
    return sorted(present, key=lambda r: (_sort_value(r, key), r["run"] or ""), reverse=descending) + missing


def report(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], fmt: str, grouped: bool) -> str:
    """The table in ``fmt``; a grouped one in text or markdown ends with the note on what the data order."""
    if not grouped:
        return render(rows, columns_for(metrics), fmt)
    table = render_groups(rows, metrics, fmt)
    note = order_note(rows, metrics) if fmt in ("text", "markdown") else []
    return (table + "\n\n" + _show_note(note, fmt)) if note else table


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, id_column: str = "run_id") -> str:
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in (id_column, *columns)} for row in rows])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([id_column, *columns])
        writer.writerows([[_csv_cell(row.get(c)) for c in (id_column, *columns)] for row in rows])
        return out.getvalue().rstrip("\n")
    cells = [[_show(c, row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]  # no rows: the headers
    align = [str.ljust if c in ("run", "status", "preset") else str.rjust for c in columns]
    lines = ["  ".join(a(c, w) for a, c, w in zip(align, columns, widths))]
    lines += ["  ".join(a(v, w) for a, v, w in zip(align, r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def render_groups(groups: Sequence[Mapping[str, Any]], metrics: Sequence[str], fmt: str) -> str:
    """Grouped rows: ``mean ± sd [95% interval]`` per metric in text and markdown, raw numbers in csv and json."""
    names = metric_columns(metrics)
    if fmt in ("csv", "json"):
        columns = [*LEADING, "n", *(f"{m}_{s}" for m in names for s in RAW_STATS), *TRAILING]
        flat = [{**g, **{f"{m}_{s}": getattr(g[m], s) for m in names for s in RAW_STATS}} for g in groups]
        return render(flat, columns, fmt, id_column="run_ids")
    shown = [{**g, **{m: _show_summary(g[m], g["n"]) for m in names}} for g in groups]
    return render(shown, [*LEADING, "n", *names, *TRAILING], fmt)


def order_note(groups: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """For the first metric: the pairs of groups whose intervals overlap, and the groups with no interval."""
    names = metric_columns(metrics)
    if not names:
        return []
    metric = names[0]
    measured = [g for g in groups if g[metric].n > 0]
    spread = [g for g in measured if g[metric].has_interval]
    pairs = [f"{_label(a)} and {_label(b)}" for a, b in itertools.combinations(spread, 2)
             if intervals_overlap(a[metric], b[metric])]
    level = f"{CONFIDENCE:.0%}"
    note = []
    if len(spread) > 2 and len(pairs) == len(spread) * (len(spread) - 1) // 2:  # every pair: say it once
        note.append((f"{metric}, not ordered by the data: the {level} intervals of all {len(spread)} overlap.", []))
    elif pairs:
        note.append((f"{metric}, not ordered by the data ({level} intervals overlap):", pairs))
    elif len(spread) > 1:
        note.append((f"{metric}, ordered by the data: the {level} intervals are all apart.", []))
    single = [_label(g) for g in measured if not g[metric].has_interval]
    if single:
        note.append((f"{metric}, no interval (one run; more seeds give one, e.g. {MORE_SEEDS}):", single))
    return note


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


def log_to_run(client: Any, run_id: str, runs: Sequence[Any], metrics: Sequence[str], plot_metric: str,
               sort: str = "depth", group: str = "seed") -> None:
    """Log the comparison of ``runs`` to one run (a sweep's parent): markdown, CSV and the plots.

    ``comparison.*`` is grouped as ``group`` says; ``comparison_runs.*`` always has one row per run.
    """
    import tempfile

    rows = rows_for(runs, metrics, group, sort)
    tables = (("comparison", rows, group == "seed"), ("comparison_runs", rows_for(runs, metrics, "none", sort), False))
    for stem, table_rows, grouped in tables:
        for fmt, suffix in (("markdown", "md"), ("csv", "csv")):
            client.log_text(run_id, report(table_rows, metrics, fmt, grouped) + "\n", f"{stem}.{suffix}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in plot(rows, plot_metric, Path(tmp)):
            client.log_artifact(run_id, str(path), "plots")


def find_runs(client: Any, experiment: str, parent: Optional[str], tags: Mapping[str, str],
              status: Optional[str]) -> List[Any]:
    """Training runs of one experiment, optionally of one sweep (``parent``: a run id or ``latest``)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    found = client.get_experiment_by_name(experiment)
    if found is None and parent != "latest":
        names = sorted(e.name for e in client.search_experiments())
        raise ConfigError("compare.experiment", experiment, "an experiment of the store: " + (", ".join(names) or "none yet"))
    ids = [found.experiment_id] if found is not None else []
    filters = [f"tags.`{tracking.TAG_ROLE}` = 'train'"]
    if parent == "latest":
        sweep = latest_sweep(client, ids, experiment)
        parent, ids = sweep.info.run_id, [sweep.info.experiment_id]
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


SUMMARY_COLUMNS = ("run", "preset", "depth", "params", "n")  # what the end of a sweep prints, before the metric


def summary_table(runs: Sequence[Any], metric: str) -> str:
    """The short table a sweep ends with: a row per group of repeats, ``metric`` as mean ± sd, and the note
    on what the data do not order."""
    groups = rows_for(runs, [metric], "seed", "depth")
    shown = [{**g, metric: _show_summary(g[metric], g["n"])} for g in groups]
    table = render(shown, [*SUMMARY_COLUMNS, metric], "text")
    note = order_note(groups, [metric])
    return table + ("\n\n" + _show_note(note, "text") if note else "")


def latest_sweep(client: Any, ids: List[str], experiment: str) -> Any:
    """The newest sweep of the experiment; if it has none, the newest of any experiment (say which)."""
    newest = {"filter_string": f"tags.`{tracking.TAG_ROLE}` = 'sweep'", "order_by": ["attributes.start_time DESC"],
              "max_results": 1}
    sweeps = client.search_runs(ids, **newest) if ids else []
    if sweeps:
        return sweeps[0]
    everywhere = [e.experiment_id for e in client.search_experiments()]
    sweeps = client.search_runs(everywhere, **newest) if everywhere else []
    if not sweeps:
        raise ConfigError("compare.parent", "latest", "a sweep's run id; no experiment of this store has a sweep yet")
    holder = client.get_experiment(sweeps[0].info.experiment_id).name
    print(f"note: experiment {experiment!r} has no sweep: comparing the newest sweep, {sweeps[0].info.run_name} "
          f"in experiment {holder!r}", file=sys.stderr)  # the command's logging is off: its output is the table
    return sweeps[0]


class Comparison(NamedTuple):
    """What ``resnet-lab-compare`` prints, and where its runs are, to point at them in the MLflow UI."""

    text: str
    uri: str
    experiment_id: str

    def where_to_look(self) -> List[str]:
        from resnet_lab.ui_view import pointer_lines

        return pointer_lines(self.uri, self.experiment_id)


def compare(cfg: Any) -> str:
    """``resnet-lab-compare``'s table (see ``comparison``)."""
    return comparison(cfg).text


def comparison(cfg: Any) -> Comparison:
    """Query, group, sort, render; writes the plots when ``compare.plot_dir`` is set."""
    c = cfg.compare
    metrics = list(c.metrics)
    validate_compare_config(cfg)
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tracking.check_reachable(uri)
    experiment = c.experiment or cfg.tracking.experiment
    runs = find_runs(tracking.client_for(uri), experiment, c.parent, dict(c.tags), c.status)
    if not runs:
        raise UserError(f"no training runs in experiment {experiment!r} of {tracking.redact_uri(uri)} match "
                        f"compare.parent={c.parent}, compare.tags={dict(c.tags)}, compare.status={c.status}")
    rows = rows_for(runs, metrics, c.group, c.sort, c.descending)
    if c.plot_dir is not None:
        out_dir = Path(c.plot_dir).expanduser()
        out_dir = out_dir if out_dir.is_absolute() else tracking.launch_dir() / out_dir
        for path in plot(rows, c.plot_metric, out_dir):
            log.info("wrote %s", path)
    text = report(rows, metrics, c.format, grouped=c.group == "seed")
    return Comparison(text, uri, runs[0].info.experiment_id)


def _shapes_result(param: str) -> bool:
    """Whether a logged param changes what a run computes, the seed aside."""
    return not any(param == key or param.startswith(key + ".") for key in NOT_GROUPING)


def _group_row(rows: Sequence[Dict[str, Any]], metrics: Sequence[str]) -> Dict[str, Any]:
    """A group's row: shared columns from its runs, a Summary per metric, the mean cost."""
    shared_group = {r.get("group") for r in rows}
    name = shared_group.pop() if len(shared_group) == 1 and None not in shared_group else None
    group: Dict[str, Any] = {"run": name or common_name([r["run"] for r in rows]),
                             "status": ",".join(sorted({str(r["status"]) for r in rows})),
                             "n": len(rows), "run_ids": [r["run_id"] for r in rows], "members": list(rows)}
    for column in SHARED:
        group[column] = next((r[column] for r in rows if r.get(column) is not None), None)
    for metric in metric_columns(metrics):
        group[metric] = summarize(r.get(metric) for r in rows)
    for column in TRAILING:
        group[column] = mean_of(r.get(column) for r in rows)
    return group


def _sort_value(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    return value.mean if isinstance(value, Summary) else value


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


def _label(group: Mapping[str, Any]) -> str:
    return f"{group['run']} (depth {group['depth']})" if group.get("depth") is not None else str(group["run"])


def _show_note(note: Sequence[Tuple[str, List[str]]], fmt: str) -> str:
    """Text: each line with its items indented; markdown: a paragraph with a bullet per item."""
    if fmt == "markdown":
        return "\n\n".join("\n".join([line, *(f"- {item}" for item in items)]) for line, items in note)
    return "\n".join("\n".join([line, *(f"  {item}" for item in items)]) for line, items in note)


def _show_summary(summary: Summary, runs: int) -> str:
    """``mean ± sd [low, high]``, with the count when it is one or fewer than the group's runs."""
    if summary.mean is None:
        return ""
    text = f"{summary.mean:.4f}"
    if summary.has_interval:
        text += f" ± {summary.sd:.4f} [{summary.ci_low:.4f}, {summary.ci_high:.4f}]"
    if summary.n == 1 or summary.n < runs:
        text += f" (n={summary.n})"
    return text


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return " ".join(map(str, value)) if isinstance(value, list) else value


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
