"""The basic sweep in MLflow (``hydra/callbacks``): one parent run per multirun, holding a child run per job.

The callback opens the parent in the launching process before any job starts. When the sweep ends the parent
gets the comparison table and plots of its jobs, and ends FAILED if any job failed. A sweeper that owns its parent
run (until_resolved, the Optuna search) leaves it alone.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from resnet_lab import tracking
from resnet_lab.errors import UserError
from resnet_lab.sweeps.jobs import (failed_jobs, failure_line, hydra_files, job_count, skipped_run_ids, swept_keys,
                                    sweep_dir_of, validate_sweep)
from resnet_lab.sweeps.parent import COMPARE_METRICS, MLFLOW_NOTE, ParentRun, description, sweep_tags

log = logging.getLogger(__name__)


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        # Plain strings: joblib and submitit pickle the callbacks with each job, and a client does not pickle.
        self.uri: Optional[str] = None
        self.parent_id: Optional[str] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_sweep(config)  # a mistake in one value of the sweep leaves no run behind
            if config.tracking.enabled:
                tracking.check_reachable(tracking.resolve_uri(config.tracking.uri, Path.cwd()))  # once, not per job
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        if not config.tracking.enabled or config.hydra.sweeper.get("owns_parent_run"):
            return  # a sweeper that runs in rounds or trials opens, or finds again, its own parent
        sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        keys = swept_keys(config)
        parent = ParentRun.open(tracking.resolve_uri(config.tracking.uri, Path.cwd()), config.tracking.experiment,
                                sweep_dir, sweep_tags(config, keys),
                                note=f"sweep over {', '.join(keys) or 'nothing'}; jobs in {sweep_dir}")
        self.uri, self.parent_id = parent.uri, parent.run_id
        log.info("MLflow parent run %s for sweep %s", self.parent_id, sweep_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra has just saved the job's config and overrides (and the sweep's ``multirun.yaml``), as given:
        a password inside a URI must not stay in them."""
        tracking.redact_files(hydra_files(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        tracking.redact_files(hydra_files(config))
        if self.parent_id is None or self.uri is None:
            return
        from resnet_lab.compare.comparison import log_to_run
        from resnet_lab.compare.render import summary_table

        parent = ParentRun(tracking.client_for(self.uri), self.uri, self.parent_id)
        sweep_dir = Path(sweep_dir_of(config.hydra.sweep.dir))
        failed, jobs, skipped = failed_jobs(sweep_dir), job_count(sweep_dir), skipped_run_ids(sweep_dir)
        runs = parent.children() + [parent.client.get_run(run_id) for run_id in skipped]
        verdict = log_to_run(parent.client, parent.run_id, runs, COMPARE_METRICS, "test_accuracy")
        note = parent.run.data.tags.get(MLFLOW_NOTE, "")
        tags = {"jobs": jobs, "jobs_failed": len(failed), "jobs_skipped": len(skipped),
                MLFLOW_NOTE: description(verdict, note)}
        parent.finish(config, runs, f"sweep {parent.run.info.run_name}: {len(runs)} runs",
                      [summary_table(runs, COMPARE_METRICS[0], verdict)],
                      "comparison.md, pairwise.md, their .csv and plots/", tags, failed,
                      failure_line(failed, jobs, sweep_dir, parent.run_id))
