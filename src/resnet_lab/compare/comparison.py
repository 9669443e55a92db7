"""Compare training runs from MLflow: one table (depth, size, cost, metrics), the pairwise verdict, and plots.

Repeats of one configuration (runs that differ only in ``seed``) form a group by default: one row with
n and each metric's mean, sd and 95% interval (see ``stats.py``), then the pairwise tests of the groups
on the first metric in words (``pairwise.py``, ``verdict.py``). Used by ``resnet-lab-compare`` and by
the sweep callback, which logs the same tables, the pairwise table and the plots to each sweep's parent run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from resnet_lab import tracking
from resnet_lab.compare.columns import GROUPINGS, columns_for
from resnet_lab.compare.plot import plot
from resnet_lab.compare.pairwise import OUTCOME_METRIC, Group, compare_pairs
from resnet_lab.compare.render import pairwise_report, report
from resnet_lab.compare.rows import rows_for
from resnet_lab.compare.verdict import Verdict
from resnet_lab.config.choices import COMPARE_FORMATS, COMPARE_SCOPES, COMPARE_TABLES, RUN_STATUSES
from resnet_lab.config.schema import CompareConfig
from resnet_lab.errors import ConfigError, UserError, require_choice
from resnet_lab.tracking.outcomes import load_correct

DEFAULT_MIN_EFFECT = CompareConfig.min_effect  # the sweep's comparison uses resnet-lab-compare's default

log = logging.getLogger(__name__)


def verdict_of(client: Any, groups: Sequence[Mapping[str, Any]], metric: str, min_effect: float,
               scope: str) -> Verdict:
    """The pairwise tests of grouped rows on ``metric``; on test accuracy each run's per-example outcomes
    give the new-data scope."""
    tested, single = [], []
    for group in groups:
        members = [m for m in group["members"] if m.get(metric) is not None and m[metric] == m[metric]]
        if len(members) == 1:
            single.append(str(group["run"]))
        if len(members) < 2:
            continue
        outcomes, split = None, None
        splits = {m.get("test_split") for m in members}
        if metric == OUTCOME_METRIC and len(splits) == 1 and None not in splits:
            correct = [load_correct(client, m["run_id"]) for m in members]
            if all(c is not None for c in correct) and len({len(c) for c in correct}) == 1:
                outcomes, split = np.stack(correct), splits.pop()
        tested.append(Group(str(group["run"]), [m[metric] for m in members], outcomes, split))
    pairs = compare_pairs(tested, metric, min_effect)
    seconds = {str(g["run"]): g.get("train_seconds") for g in groups}
    return Verdict(metric, scope, min_effect, pairs, single, seconds)


def log_to_run(client: Any, run_id: str, runs: Sequence[Any], metrics: Sequence[str], plot_metric: str,
               sort: str = "depth", group: str = "seed", min_effect: float = DEFAULT_MIN_EFFECT,
               scope: str = "test_set") -> Optional[Verdict]:
    """Log the comparison of ``runs`` to one run (a sweep's parent): markdown, CSV, the pairwise table
    (``pairwise.md``, ``.csv``) and the plots; returns the verdict on the first metric, when grouped.

    ``comparison.*`` is grouped as ``group`` says; ``comparison_runs.*`` always has one row per run.
    """
    import tempfile

    rows = rows_for(runs, metrics, group, sort)
    verdict = verdict_of(client, rows, metrics[0], min_effect, scope) if group == "seed" and metrics else None
    tables = (("comparison", rows, group == "seed", verdict),
              ("comparison_runs", rows_for(runs, metrics, "none", sort), False, None))
    for stem, table_rows, grouped, told in tables:
        for fmt, suffix in (("markdown", "md"), ("csv", "csv")):
            client.log_text(run_id, report(table_rows, metrics, fmt, grouped, told) + "\n", f"{stem}.{suffix}")
    if verdict is not None:
        client.log_text(run_id, pairwise_report(verdict, "markdown") + "\n", "pairwise.md")
        client.log_text(run_id, pairwise_report(verdict, "csv") + "\n", "pairwise.csv")
    with tempfile.TemporaryDirectory() as tmp:
        for path in plot(rows, plot_metric, Path(tmp)):
            client.log_artifact(run_id, str(path), "plots")
    return verdict


class Comparison(NamedTuple):
    """What ``resnet-lab-compare`` prints, and where its runs are, to point at them in the MLflow UI."""

    text: str
    uri: str
    experiment_id: str

    def where_to_look(self) -> List[str]:
        from resnet_lab.tracking.ui_view import pointer_lines

        return pointer_lines(self.uri, self.experiment_id)


def comparison(cfg: Any) -> Comparison:
    """Query, group, sort, render; writes the plots when ``compare.plot_dir`` is set."""
    c = cfg.compare
    metrics = list(c.metrics)
    validate_compare_config(cfg)
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tracking.check_reachable(uri)
    experiment = c.experiment or cfg.tracking.experiment
    client = tracking.client_for(uri)
    runs = tracking.find_runs(client, experiment, c.parent, dict(c.tags), c.status)
    if not runs:
        raise UserError(f"no training runs in experiment {experiment!r} of {tracking.redact_uri(uri)} match "
                        f"compare.parent={c.parent}, compare.tags={dict(c.tags)}, compare.status={c.status}")
    rows = rows_for(runs, metrics, c.group, c.sort, c.descending)
    grouped = c.group == "seed"
    verdict = verdict_of(client, rows, metrics[0], c.min_effect, c.scope) if grouped and metrics else None
    if verdict is not None and c.parent is not None:
        verdict = _sequential_if_so(client, runs, rows, metrics[0], verdict)
    if c.plot_dir is not None:
        out_dir = Path(c.plot_dir).expanduser()
        out_dir = out_dir if out_dir.is_absolute() else tracking.launch_dir() / out_dir
        for path in plot(rows, c.plot_metric, out_dir):
            log.info("wrote %s", path)
    text = report(rows, metrics, c.format, grouped, verdict, pairs_only=c.table == "pairs")
    return Comparison(text, uri, runs[0].info.experiment_id)


def _sequential_if_so(client: Any, runs: Sequence[Any], rows: Sequence[Mapping[str, Any]], metric: str,
                      verdict: Verdict) -> Verdict:
    """A sweep that added seeds until its pairs were resolved (hydra/sweeper=until_resolved) looked at its data
    after every round: its verdict is the sequential one, recomputed here; fixed-sample tests would ignore the
    looks. On another metric than the sweep's, the fixed-sample verdict stays, with a note saying so."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from resnet_lab.compare.sequential_verdict import DESIGN_TAG, verdict_of_sweep

    parent_id = runs[0].data.tags.get(MLFLOW_PARENT_RUN_ID)
    tags = client.get_run(parent_id).data.tags if parent_id else {}
    if DESIGN_TAG not in tags:
        return verdict
    seeds = {r.info.run_id: r.data.params.get("seed") for r in runs}
    sequential = verdict_of_sweep(tags[DESIGN_TAG], rows, seeds, metric)
    if sequential is None:
        print(f"note: this sweep stopped on another metric than {metric}; the tests below do not account for its "
              "repeated looks", file=sys.stderr)
        return verdict
    return sequential


def validate_compare_config(cfg: Any) -> None:
    """What ``resnet-lab-compare`` is asked for, checked before the store is opened."""
    compare = cfg.compare
    require_choice("compare.format", compare.format, COMPARE_FORMATS)
    require_choice("compare.group", compare.group, GROUPINGS)
    columns = columns_for(list(compare.metrics))
    if compare.sort not in columns:
        raise ConfigError("compare.sort", compare.sort, "a column: " + ", ".join(columns))
    require_choice("compare.scope", compare.scope, COMPARE_SCOPES)
    require_choice("compare.table", compare.table, COMPARE_TABLES)
    if compare.table == "pairs" and compare.group != "seed":
        raise ConfigError("compare.table", compare.table, "'groups' unless compare.group='seed': pairs are of groups")
    if not 0 < compare.min_effect:
        raise ConfigError("compare.min_effect", compare.min_effect, "a positive margin in the metric's units "
                          "(0.01 is one point of accuracy)")
    if compare.status is not None and compare.status not in RUN_STATUSES:
        raise ConfigError("compare.status", compare.status, "null or one of " + ", ".join(map(repr, RUN_STATUSES)))
