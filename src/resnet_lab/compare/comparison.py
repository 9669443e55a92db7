"""Compare training runs from MLflow: one table (depth, size, cost, metrics) and accuracy plots.

Repeats of one configuration (runs that differ only in ``seed``) form a group by default: one row with
n and each metric's mean, sd and 95% interval (see ``stats.py``), then a note naming the groups whose
intervals overlap, which the data do not order. Used by ``resnet-lab-compare`` and by the sweep
callback, which logs the same tables and plots to each sweep's parent run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence

from resnet_lab import tracking
from resnet_lab.compare.columns import GROUPINGS, columns_for
from resnet_lab.compare.plot import plot
from resnet_lab.compare.render import report
from resnet_lab.compare.rows import rows_for
from resnet_lab.config.choices import COMPARE_FORMATS, RUN_STATUSES
from resnet_lab.errors import ConfigError, UserError, require_choice

log = logging.getLogger(__name__)


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
        from resnet_lab.tracking.ui_view import pointer_lines

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


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def validate_compare_config(cfg: Any) -> None:
    """What ``resnet-lab-compare`` is asked for, checked before the store is opened."""
    compare = cfg.compare
    require_choice("compare.format", compare.format, COMPARE_FORMATS)
    require_choice("compare.group", compare.group, GROUPINGS)
    columns = columns_for(list(compare.metrics))
    if compare.sort not in columns:
        raise ConfigError("compare.sort", compare.sort, "a column: " + ", ".join(columns))
    if compare.status is not None and compare.status not in RUN_STATUSES:
        raise ConfigError("compare.status", compare.status, "null or one of " + ", ".join(map(repr, RUN_STATUSES)))
