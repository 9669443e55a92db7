"""Runs as table rows: the columns read from each run, and repeats of one configuration grouped into one row.

Repeats are runs that differ only in ``seed``; a group's row has n and, per metric, a ``Summary`` (mean,
sd and 95% interval: ``stats.py``).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from resnet_lab import tracking
from resnet_lab.compare.columns import TRAILING, metric_columns
from resnet_lab.compare.stats import Summary, mean_of, summarize
from resnet_lab.tracking import identity

# Where each column's value lives in a run: params first (what the UI plots), then tags, then metrics.
SOURCES = {
    "depth": (("params", "arch.depth"), ("tags", "depth")),
    "params": (("params", "arch.params_total"), ("tags", "params_total")),
    "flops": (("params", "arch.flops"), ("tags", "flops")),
    "preset": (("tags", "preset"), ("params", "model.name")),
    "train_seconds": (("metrics", "train_seconds"),),
    "images_per_s": (("metrics", "train_images_per_s"),),
}


SHARED = ("preset", "depth", "params", "flops")  # the same for every run of a group


# Flat param names (and prefixes) that do not change what a run computes: tracking/identity.py's rule, and the seed.
NOT_GROUPING = ("seed", *identity.NOT_IDENTITY, *(f"trainer.{k}" for k in identity.NOT_IDENTITY_TRAINER),
                *(f"data.{k}" for k in identity.NOT_IDENTITY_DATA),
                *(f"model.{k}" for k in identity.NOT_IDENTITY_MODEL))


SEED_IN_NAME = re.compile(r"-seed-?\d+(?=-|$)")  # what naming.run_name adds for a swept seed


def row_of(run: Any, metrics: Sequence[str]) -> Dict[str, Any]:
    """One table row: numbers stay numbers (None where the run has no value)."""
    data = {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics}
    status = "PRUNED" if tracking.TAG_PRUNED_EPOCH in run.data.tags else run.info.status  # FINISHED, but cut short
    row: Dict[str, Any] = {"run": run.info.run_name, "run_id": run.info.run_id, "status": status,
                           "group": run.data.tags.get(tracking.TAG_GROUP),
                           "test_split": run.data.tags.get(tracking.TAG_TEST_SPLIT)}
    for column, sources in SOURCES.items():
        row[column] = next((_number(data[kind][key]) for kind, key in sources if key in data[kind]), None)
    for metric in metrics:
        row[metric] = run.data.metrics.get(metric)
    return row


def group_key(run: Any) -> Tuple[str, Any]:
    """Runs with one key repeat one configuration: the group hash training tags, else the params that matter. A
    pruned run stands alone: its epochs were cut short, so it is no repeat of a finished run."""
    if tracking.TAG_PRUNED_EPOCH in run.data.tags:
        return ("pruned", run.info.run_id)
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


def _number(text: Any) -> Any:
    if isinstance(text, (int, float)):
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in str(text) else value
