"""A Hydra callback that gives every multirun one MLflow parent run holding a child run per job."""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from resnet_lab import tracking

log = logging.getLogger(__name__)

JOB_FAILED_FILE = "job_failed.txt"  # written into a job's output folder when the job fails


def sweep_dir_of(sweep_dir: str) -> str:
    """The multirun folder made absolute: the key by which jobs find their parent run."""
    return str((tracking.launch_dir() / sweep_dir).resolve())


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.uri: Optional[str] = None
        self.parent_id: Optional[str] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.tracking.enabled:
            return
        tracking.quiet_mlflow()
        self.uri = tracking.resolve_uri(config.tracking.uri, Path.cwd())
        client = tracking.client_for(self.uri)
        sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        run = client.create_run(
            tracking.experiment_id(client, config.tracking.experiment, self.uri),
            run_name=f"sweep-{Path(sweep_dir).parent.name}-{Path(sweep_dir).name}",
            tags={tracking.TAG_ROLE: "sweep", tracking.TAG_SWEEP_DIR: sweep_dir,
                  "overrides": " ".join(config.hydra.overrides.task)},
        )
        self.parent_id = run.info.run_id
        # If the sweep dies (Ctrl-C, a crash in Hydra), the parent must not stay RUNNING.
        atexit.register(self._close, "KILLED")
        log.info("MLflow parent run %s for sweep %s", self.parent_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_id is None:
            return
        children = self._children()
        sweep_dir = Path(sweep_dir_of(config.hydra.sweep.dir))
        # Markers count every failed job, also those that failed before their MLflow run existed.
        failed = sorted(p.parent.name for p in sweep_dir.glob(f"*/{JOB_FAILED_FILE}"))
        jobs = len([p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")])
        client = tracking.client_for(self.uri)
        client.log_text(self.parent_id, _table(children), "comparison.md")
        client.set_tag(self.parent_id, "jobs", str(jobs))
        client.set_tag(self.parent_id, "jobs_failed", str(len(failed)))
        self._close("FAILED" if failed else "FINISHED")
        if failed:
            print(f"error: {len(failed)} of {jobs} sweep jobs failed (job {', '.join(failed)}; reasons in "
                  f"{sweep_dir}/<job>/{JOB_FAILED_FILE}); see MLflow run {self.parent_id}", file=sys.stderr)
            sys.exit(1)

    def _children(self):
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        client = tracking.client_for(self.uri)
        experiment = client.get_run(self.parent_id).info.experiment_id
        return client.search_runs([experiment], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_id}'",
                                  order_by=["attributes.start_time ASC"])

    def _close(self, status: str) -> None:
        if self.parent_id is None:
            return
        client = tracking.client_for(self.uri)
        if client.get_run(self.parent_id).info.status == "RUNNING":
            client.set_terminated(self.parent_id, status)


def _table(children) -> str:
    """A markdown table of the sweep's jobs, for a first look without opening each run."""
    columns = ["run", "status", "depth", "params_total", "flops", "val_accuracy", "test_accuracy"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for run in children:
        metrics, tags = run.data.metrics, run.data.tags
        cells = [run.info.run_name, run.info.status, tags.get("depth", ""), tags.get("params_total", ""),
                 tags.get("flops", ""), _fmt(metrics.get("val_accuracy")), _fmt(metrics.get("test_accuracy"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"
