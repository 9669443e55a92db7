"""Sweeps in MLflow: one parent run per multirun, holding a child run per job.

The Hydra callback opens the parent in the launching process before any job starts; jobs, in
this process or in others (joblib, submitit), find it by the tag ``resnet_lab.sweep_dir``.
When the sweep ends the parent gets the comparison table and plots of its jobs, and ends
FAILED if any job failed.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.errors import ConfigError, UserError

log = logging.getLogger(__name__)

JOB_FAILED_FILE = "job_failed.txt"  # written into a job's output folder when the job fails
JOB_SKIPPED_FILE = "job_skipped.txt"  # holds the id of the FINISHED run a skipped job stands for
COMPARE_METRICS = ("test_accuracy", "best_val_accuracy", "val_accuracy")  # the parent's table columns


def sweep_dir_of(sweep_dir: str) -> str:
    """The multirun folder made absolute: the key by which jobs find their parent run."""
    return str((tracking.launch_dir() / sweep_dir).resolve())


MLFLOW_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI


def _description(verdict: Any, note: str) -> str:
    """The parent's description: the verdict in short, the pairwise table, then what the sweep was over."""
    if verdict is None:
        return note
    from resnet_lab.compare.render import pairwise_report

    table = pairwise_report(verdict, "markdown") if verdict.pairs else ""
    return "\n\n".join(part for part in (f"**{verdict.short()}**", table, note) if part)


def swept_keys(config: DictConfig) -> List[str]:
    """Keys that vary between the jobs: sweep overrides (``a=1,2``) and the sweeper's ``params``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    params = config.hydra.sweeper.get("params") or {}
    return keys + [str(k).lstrip("+~") for k in params if str(k).lstrip("+~") not in keys]


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.uri: Optional[str] = None
        self.parent_id: Optional[str] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _check_direction(config)
            validate_every_job(config)  # a mistake in one value of the sweep leaves no run behind
            if config.tracking.enabled:
                tracking.check_reachable(tracking.resolve_uri(config.tracking.uri, Path.cwd()))  # once, not per job
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        if not config.tracking.enabled or config.hydra.sweeper.get("owns_parent_run"):
            return  # a sweeper that runs in rounds (until_resolved) opens, or finds again, its own parent
        tracking.quiet_mlflow()
        self.uri = tracking.resolve_uri(config.tracking.uri, Path.cwd())
        client = tracking.client_for(self.uri)
        sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        keys = swept_keys(config)
        run = client.create_run(
            tracking.experiment_id(client, config.tracking.experiment, self.uri),
            run_name=f"sweep-{Path(sweep_dir).parent.name}-{Path(sweep_dir).name}",
            tags={tracking.TAG_ROLE: "sweep", tracking.TAG_SWEEP_DIR: sweep_dir,
                  tracking.TAG_SWEPT_KEYS: ",".join(keys),
                  "overrides": " ".join(tracking.redact_overrides(config.hydra.overrides.task)),
                  MLFLOW_NOTE: f"sweep over {', '.join(keys) or 'nothing'}; jobs in {sweep_dir}"},
        )
        self.parent_id = run.info.run_id
        # If the sweep dies (Ctrl-C, a crash in Hydra), the parent must not stay RUNNING.
        atexit.register(self._close, "KILLED")
        log.info("MLflow parent run %s for sweep %s", self.parent_id, sweep_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra has just saved the job's config and overrides (and the sweep's ``multirun.yaml``), as given:
        a password inside a URI must not stay in them."""
        tracking.redact_files(hydra_files(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        tracking.redact_files(hydra_files(config))
        if self.parent_id is None:
            return
        from resnet_lab.compare.comparison import log_to_run

        sweep_dir = Path(sweep_dir_of(config.hydra.sweep.dir))
        # Markers count every failed job, also those that failed before their MLflow run existed.
        failed = sorted(p.parent.name for p in sweep_dir.glob(f"*/{JOB_FAILED_FILE}"))
        jobs = len([p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")])
        client = tracking.client_for(self.uri)
        runs = self._children() + self._skipped(sweep_dir)
        verdict = log_to_run(client, self.parent_id, runs, COMPARE_METRICS, "test_accuracy")
        best = [r.data.metrics["test_accuracy"] for r in runs if "test_accuracy" in r.data.metrics]
        if best:  # so the experiment's run list shows each sweep's best result
            tracking.Run(client, self.parent_id).log_metrics({"best_test_accuracy": max(best)}, step=0)
        note = client.get_run(self.parent_id).data.tags.get(MLFLOW_NOTE, "")
        tracking.Run(client, self.parent_id).set_tags({"jobs": jobs, "jobs_failed": len(failed),
                                                        "jobs_skipped": len(self._skipped(sweep_dir)),
                                                        MLFLOW_NOTE: _description(verdict, note)})
        champion = sweep_champion(config, client, self.parent_id, runs, failed)
        self._close("FAILED" if failed else "FINISHED")
        print(self._summary(client, runs, verdict, champion), flush=True)
        if failed:
            print(f"error: {len(failed)} of {jobs} sweep jobs failed (job {', '.join(failed)}; reasons in "
                  f"{sweep_dir}/<job>/{JOB_FAILED_FILE}); see MLflow run {self.parent_id}", file=sys.stderr)
            sys.exit(1)

    def _summary(self, client: Any, runs: List[Any], verdict: Any, champion: Any) -> str:
        """What the terminal shows when the sweep ends: its comparison, and where the full one is."""
        from resnet_lab.compare.render import summary_table
        from resnet_lab.tracking.ui_view import pointer_lines

        parent = client.get_run(self.parent_id)
        lines = ["", f"sweep {parent.info.run_name}: {len(runs)} runs",
                 summary_table(runs, COMPARE_METRICS[0], verdict), "",
                 f"parent run {self.parent_id}: comparison.md, pairwise.md, their .csv and plots/ in "
                 f"{parent.info.artifact_uri}",
                 *([champion.line()] if champion is not None else []),
                 *pointer_lines(self.uri, parent.info.experiment_id)]
        return "\n".join(lines)

    def _children(self) -> List[Any]:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        client = tracking.client_for(self.uri)
        experiment = client.get_run(self.parent_id).info.experiment_id
        return client.search_runs([experiment], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_id}'",
                                  order_by=["attributes.start_time ASC"])

    def _skipped(self, sweep_dir: Path) -> List[Any]:
        """FINISHED runs of earlier sweeps that skipped jobs of this one stand for."""
        client = tracking.client_for(self.uri)
        ids = [p.read_text().strip() for p in sorted(sweep_dir.glob(f"*/{JOB_SKIPPED_FILE}"))]
        return [client.get_run(run_id) for run_id in ids if run_id]

    def _close(self, status: str) -> None:
        if self.parent_id is None:
            return
        client = tracking.client_for(self.uri)
        if client.get_run(self.parent_id).info.status == "RUNNING":
            client.set_terminated(self.parent_id, status)


def sweep_champion(config: DictConfig, client: Any, parent_id: str, runs: List[Any], failed: List[str]) -> Any:
    """Register the sweep's best run as its ``champion`` (``tracking.champion``) and tag the parent with it; None
    when turned off."""
    from resnet_lab.tracking.champion import Champion, register_champion, registry_name

    if not config.tracking.champion or not config.tracking.log_model:
        return None
    metric = config.tracking.champion_metric
    if failed:
        return Champion(metric=metric, skipped=f"{len(failed)} job(s) failed and the best may be among them "
                                               "(rerun with tracking.skip_finished=true to finish the sweep)")
    debug = OmegaConf.select(config, "hydra.runtime.choices.debug", default=None) is not None
    name = registry_name(config.tracking.experiment, config.tracking.register_model, debug)
    with_outputs = [client.get_run(run.info.run_id) for run in runs]  # search results leave out models
    champion = register_champion(client, with_outputs, name, metric, parent_id)
    if champion.version is not None:  # the parent says which version its sweep made champion
        tracking.Run(client, parent_id).set_tags({"champion": f"{champion.name} v{champion.version}"})
    return champion


def hydra_files(config: DictConfig) -> List[Path]:
    """The files Hydra writes for a job (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) and a sweep
    (``multirun.yaml``)."""
    from hydra.types import RunMode

    files = []
    output_dir = OmegaConf.select(config, "hydra.runtime.output_dir", default=None)  # unset in a sweep's parent
    if config.hydra.output_subdir is not None and output_dir:
        folder = Path(output_dir) / config.hydra.output_subdir
        files += [folder / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    if config.hydra.mode == RunMode.MULTIRUN:
        files.append(Path(sweep_dir_of(config.hydra.sweep.dir)) / "multirun.yaml")
    return files


def job_overrides(config: DictConfig) -> Optional[List[List[str]]]:
    """Each job's overrides, as the basic sweeper will run them (for until_resolved: its first round); None for a
    sweeper that draws its jobs as it goes (Optuna)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    target = str(config.hydra.sweeper.get("_target_", ""))
    if not (target.endswith("BasicSweeper") or target.endswith("UntilResolvedSweeper")):
        return None
    parser = OverridesParser.create()
    task = parser.parse_overrides(list(config.hydra.overrides.task))
    given = {o.key_or_group for o in task}
    params = config.hydra.sweeper.get("params") or {}
    swept = [o for o in task if o.is_sweep_override()]
    swept += [parser.parse_override(f"{k}={v}") for k, v in params.items() if str(k).lstrip("+~") not in given]
    fixed = [o.input_line for o in task if not o.is_sweep_override()]
    choices = [[f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()] for o in swept]
    return [fixed + list(job) for job in itertools.product(*choices)]


def validate_every_job(config: DictConfig) -> None:
    """Compose and check every job of the sweep before any of them, or the parent run, starts."""
    from hydra import compose

    from resnet_lab.config.validation import validate_train_config

    jobs = job_overrides(config)
    for overrides in jobs or ():
        validate_train_config(compose(config.hydra.job.config_name, overrides=overrides))


def _check_direction(config: DictConfig) -> None:
    """An optimizing sweeper (Optuna) must maximize accuracies and minimize losses."""
    direction = config.hydra.sweeper.get("direction")
    if direction is None:
        return
    wanted = "minimize" if config.trainer.monitor.endswith("loss") else "maximize"
    if str(direction) != wanted:
        raise ConfigError("hydra.sweeper.direction", str(direction),
                          f"{wanted!r} for trainer.monitor={config.trainer.monitor!r}")


@dataclass
class JobPlan:
    """How one training job is reported: its run name and tags, or the FINISHED run it can skip to."""

    run_name: Optional[str] = None
    tags: Dict[str, Any] = field(default_factory=dict)
    finished: Optional[Any] = None  # an MLflow run with the same config hash (tracking.skip_finished)


def plan_job(cfg: DictConfig, overrides: List[str], sweep_dir: Optional[str], job_num: Optional[int]) -> JobPlan:
    """Name the run from its overrides and find a FINISHED twin to skip to."""
    from resnet_lab.tracking.identity import config_hash
    from resnet_lab.tracking.naming import run_name

    plan = JobPlan()
    if not cfg.tracking.enabled:
        return plan
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tracking.check_reachable(uri)
    if sweep_dir is not None:
        plan.tags = {tracking.TAG_SWEEP_DIR: sweep_dir, tracking.TAG_JOB_NUM: job_num}
    plan.run_name = cfg.tracking.run_name or run_name(cfg.model.name, overrides)
    if cfg.tracking.skip_finished:
        plan.finished = tracking.finished_twin(uri, cfg.tracking.experiment, config_hash(cfg))
    return plan
