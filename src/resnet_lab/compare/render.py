"""The comparison as a person reads it (text, markdown) or a program does (csv, json), and the note on
which groups the data do not order."""

from __future__ import annotations

import csv
import io
import itertools
import json
from typing import Any, List, Mapping, Sequence, Tuple

from resnet_lab.compare.columns import LEADING, TRAILING, columns_for, metric_columns
from resnet_lab.compare.rows import rows_for
from resnet_lab.compare.stats import CONFIDENCE, Summary, intervals_overlap

RAW_STATS = ("mean", "sd", "ci_low", "ci_high")  # a grouped metric's CSV columns and JSON keys


MORE_SEEDS = "seed=1,2,3"  # the override the note suggests


SUMMARY_COLUMNS = ("run", "preset", "depth", "params", "n")  # what the end of a sweep prints, before the metric


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


def summary_table(runs: Sequence[Any], metric: str) -> str:
    """The short table a sweep ends with: a row per group of repeats, ``metric`` as mean ± sd, and the note
    on what the data do not order."""
    groups = rows_for(runs, [metric], "seed", "depth")
    shown = [{**g, metric: _show_summary(g[metric], g["n"])} for g in groups]
    table = render(shown, [*SUMMARY_COLUMNS, metric], "text")
    note = order_note(groups, [metric])
    return table + ("\n\n" + _show_note(note, "text") if note else "")


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
