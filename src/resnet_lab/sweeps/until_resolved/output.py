"""The end of the sweep: the parent's comparison (tables, plots) with the sequential verdict in its place, its
description, and the summary the terminal shows."""

from __future__ import annotations

from typing import Any, List, Mapping, Sequence

from omegaconf import DictConfig

from resnet_lab.compare.sequential import Design
from resnet_lab.compare.sequential_verdict import sequential_verdict
from resnet_lab.sweeps.jobs import failure_line
from resnet_lab.sweeps.parent import COMPARE_METRICS, MLFLOW_NOTE, ParentRun, description
from resnet_lab.sweeps.until_resolved.options import Options
from resnet_lab.sweeps.until_resolved.record import rounds_table

TAG_STOP_REASON = "resnet_lab.stop_reason"


def finish(config: DictConfig, parent: ParentRun, runs: Sequence[Any], values: Mapping[str, List[float]],
           names: Mapping[str, str], design: Design, options: Options, rounds: Sequence[Mapping[str, Any]],
           reason: str, wall: float, failed: List[str], launched: int, sweep_dir: str, ahead: Any = None) -> None:
    """``ahead``: the last round's forecast (``compare.forecast``), so that the verdict says what its line said."""
    from resnet_lab.compare.comparison import log_to_run
    from resnet_lab.compare.render import pairwise_report, report, summary_table
    from resnet_lab.compare.rows import rows_for

    client = parent.client
    log_to_run(client, parent.run_id, runs, COMPARE_METRICS, options.metric)
    rows = rows_for(runs, list(COMPARE_METRICS), "seed", "depth")
    seconds = {str(g["run"]): g.get("train_seconds") for g in rows}
    named = {names.get(g, g): v for g, v in values.items()}
    verdict = sequential_verdict(named, design, options.min_effect, options.metric, seconds, ahead=ahead)
    for fmt, suffix in (("markdown", "md"), ("csv", "csv")):  # the sequential verdict replaces the fixed-sample one
        client.log_text(parent.run_id, report(rows, list(COMPARE_METRICS), fmt, True, verdict) + "\n",
                        f"comparison.{suffix}")
        client.log_text(parent.run_id, pairwise_report(verdict, fmt) + "\n", f"pairwise.{suffix}")
    total = sum(r.get("seconds", 0) for r in rounds)
    note = description(verdict, rounds_table(rounds), f"stopped: {reason} after {len(rounds)} rounds")
    tags = {TAG_STOP_REASON: reason, MLFLOW_NOTE: note, "jobs_failed": len(failed),
            "wall_seconds_last_session": round(wall, 1), "training_seconds_rounds": round(total, 1)}
    parent.finish(config, runs, f"sweep {parent.run.info.run_name}: {len(runs)} runs in {len(rounds)} rounds; "
                  f"stopped: {reason}; wall time {wall / 60:.1f} min", [summary_table(runs, options.metric, verdict)],
                  "rounds.md, rounds.json, comparison.md, pairwise.md", tags, failed,
                  failure_line(failed, launched, sweep_dir, parent.run_id))
