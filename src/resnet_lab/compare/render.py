"""The comparison as a person reads it (text, markdown) or a program does (csv, json), with the pairwise
verdict of its groups."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping, Optional, Sequence

from resnet_lab.compare.columns import LEADING, TRAILING, columns_for, metric_columns
from resnet_lab.compare.rows import rows_for
from resnet_lab.compare.stats import Summary
from resnet_lab.compare.verdict import Units, Verdict

RAW_STATS = ("mean", "sd", "ci_low", "ci_high")  # a grouped metric's CSV columns and JSON keys
SUMMARY_COLUMNS = ("run", "preset", "depth", "params", "n")  # what the end of a sweep prints, before the metric


def report(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], fmt: str, grouped: bool,
           verdict: Optional[Verdict] = None, pairs_only: bool = False) -> str:
    """The table in ``fmt``; a grouped one with the pairwise verdict: after the table in text and markdown,
    as ``pairs`` and ``verdict`` beside ``groups`` in json. A CSV holds one table: the groups, or with
    ``pairs_only`` the pairs."""
    if not grouped:
        return render(rows, columns_for(metrics), fmt)
    if pairs_only and verdict is not None and fmt == "csv":
        return pairwise_report(verdict, "csv")
    table = render_groups(rows, metrics, fmt)
    if verdict is None or fmt == "csv":
        return table
    if fmt == "json":
        return json.dumps({"groups": json.loads(table), "pairs": verdict.rows(), "verdict": verdict.lines()})
    lines = verdict.lines()
    if fmt == "markdown":
        return table + "\n\n" + _markdown_lines(lines) + ("\n\n" + pairwise_report(verdict, "markdown")
                                                          if verdict.pairs else "")
    return table + ("\n\n" + "\n".join(lines) if lines else "")


PAIR_COLUMNS = ("a", "b", "n_a", "n_b", "verdict", "diff", "ci_low", "ci_high", "p_holm", "p_equal_holm",
                "prob_a_beats_b", "prob_low", "prob_high", "new_data_diff", "new_data_ci_low", "new_data_ci_high",
                "new_data_p_holm", "seeds_needed")


def pairwise_report(verdict: Verdict, fmt: str) -> str:
    """The pairwise table: csv and json carry every number of both scopes; markdown what a person compares."""
    rows = verdict.rows()
    if fmt == "json":
        return json.dumps(rows)
    if fmt == "csv":
        columns = list(rows[0]) if rows else ["a", "b", "verdict"]
        return render(rows, columns[1:], "csv", id_column=columns[0])
    units = Units(verdict.metric)
    shown = []
    for row in rows:
        first = "new_data" if row["scope"] == "new_data" else "test_set"
        shown.append({
            "pair": f"{row['a']} vs {row['b']}", "n": f"{row['n_a']}, {row['n_b']}",
            "difference [95%]": _interval(units, row, first),
            "Holm p": f"{row['p_holm']:.3g}",
            "P(a run of A beats B) [95%]": f"{row[first + '_prob_a_beats_b']:.2f} [{row[first + '_prob_low']:.2f}, "
                                           f"{row[first + '_prob_high']:.2f}]",
            "on new data": _interval(units, row, "new_data") if row["new_data_diff"] is not None else "-",
            "verdict": row["verdict"] + (f", about {row['seeds_needed']} seeds a group"
                                         if row["seeds_needed"] else ""),
        })
    columns = ["pair", "n", "difference [95%]", "Holm p", "P(a run of A beats B) [95%]", "on new data", "verdict"]
    return render(shown, columns, "markdown" if fmt == "markdown" else "text", id_column="pair")


def _interval(units: Units, row: Mapping[str, Any], scope: str) -> str:
    return (f"{units(row[scope + '_diff'], signed=True)} [{units(row[scope + '_ci_low'], signed=True)}, "
            f"{units(row[scope + '_ci_high'], signed=True)}]")


def _markdown_lines(lines: Sequence[str]) -> str:
    """The verdict as markdown: the heading as a paragraph, each indented line a bullet."""
    return "\n".join(f"- {line.strip()}" if line.startswith("  ") else f"\n{line}\n" for line in lines).strip()


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


def summary_table(runs: Sequence[Any], metric: str, verdict: Optional[Verdict] = None) -> str:
    """The short table a sweep ends with: a row per group of repeats, ``metric`` as mean ± sd, and the
    pairwise verdict."""
    groups = rows_for(runs, [metric], "seed", "depth")
    shown = [{**g, metric: _show_summary(g[metric], g["n"])} for g in groups]
    table = render(shown, [*SUMMARY_COLUMNS, metric], "text")
    lines = verdict.lines() if verdict is not None else []
    return table + ("\n\n" + "\n".join(lines) if lines else "")


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
