"""A sweep's parent run in MLflow, for every sweeper: opened (or found again by a key, for a sweeper whose rerun
goes on where it stopped) before any job starts, never left RUNNING, and finished the same way: its best metric,
its tags, its champion, its status and the summary the terminal shows.

Jobs, in this process or in others (joblib, submitit, Slurm), find the parent by the tag ``resnet_lab.sweep_dir``.
"""

from __future__ import annotations

import atexit
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking

MLFLOW_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI
COMPARE_METRICS = ("test_accuracy", "best_val_accuracy", "val_accuracy")  # the parent's table columns
TAG_SWEEP_DIRS = "resnet_lab.sweep_dirs"  # every folder a rerun of the same sweep launched jobs into


def parent_name(sweep_dir: str, kind: str = "sweep") -> str:
    return f"{kind}-{Path(sweep_dir).parent.name}-{Path(sweep_dir).name}"


@dataclass
class ParentRun:
    """The parent run of one sweep: ``open`` it, add to it, then ``finish`` it once."""

    client: Any
    uri: str
    run_id: str
    reopened: bool = False

    @classmethod
    def open(cls, uri: str, experiment: str, sweep_dir: str, tags: Mapping[str, Any], note: str,
             key_tag: Optional[str] = None, kind: str = "sweep") -> "ParentRun":
        """A new parent run (named ``<kind>-<date>-<time>``); or, with ``key_tag`` (a tag in ``tags``), the newest
        parent of the same sweep reopened, with this folder added to the folders its jobs ran in."""
        tracking.quiet_mlflow()
        client = tracking.client_for(uri)
        experiment_id = tracking.experiment_id(client, experiment, uri)
        tags = {tracking.TAG_ROLE: "sweep", tracking.TAG_SWEEP_DIR: sweep_dir, **tags}
        found = client.search_runs([experiment_id], filter_string=f"tags.`{tracking.TAG_ROLE}` = 'sweep' and "
                                   f"tags.`{key_tag}` = '{tags[key_tag]}'", order_by=["attributes.start_time DESC"],
                                   max_results=1) if key_tag else []
        if found:
            parent = cls(client, uri, found[0].info.run_id, reopened=True)
            client.update_run(parent.run_id, status="RUNNING")
            dirs = found[0].data.tags.get(TAG_SWEEP_DIRS, found[0].data.tags.get(tracking.TAG_SWEEP_DIR, ""))
            tags[TAG_SWEEP_DIRS] = ",".join(dict.fromkeys([d for d in dirs.split(",") if d] + [sweep_dir]))
            for key, value in tags.items():  # jobs of this folder find the parent by its sweep_dir tag
                client.set_tag(parent.run_id, key, value)
        else:
            tags = {**tags, TAG_SWEEP_DIRS: sweep_dir, MLFLOW_NOTE: note}
            run = client.create_run(experiment_id, run_name=parent_name(sweep_dir, kind), tags=tags)
            parent = cls(client, uri, run.info.run_id)
        atexit.register(parent.close, "KILLED")  # Ctrl-C or a crash in Hydra: the parent must not stay RUNNING
        return parent

    @property
    def run(self) -> Any:
        return self.client.get_run(self.run_id)

    def children(self, finished_training_only: bool = False) -> List[Any]:
        """The parent's child runs, oldest first."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        filters = [f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.run_id}'"]
        if finished_training_only:
            filters += [f"tags.`{tracking.TAG_ROLE}` = 'train'", "attributes.status = 'FINISHED'"]
        return list(self.client.search_runs([self.run.info.experiment_id], filter_string=" and ".join(filters),
                                            order_by=["attributes.start_time ASC"], max_results=5000))

    def close(self, status: str) -> None:
        if self.client.get_run(self.run_id).info.status == "RUNNING":
            self.client.set_terminated(self.run_id, status)

    def finish(self, config: DictConfig, runs: Sequence[Any], headline: str, body: Sequence[str], artifacts: str,
               tags: Mapping[str, Any], failed: List[str], failure: str,
               champion_from: Optional[Sequence[Any]] = None) -> None:
        """Record the end of the sweep (tags, the best test accuracy, the champion), close the run, print the
        summary (``headline``, ``body``, where the artifacts are); when jobs failed, print ``failure`` on stderr and
        exit 1. The champion is the best of ``runs``, and none while jobs failed, unless the sweeper names its
        candidates (``champion_from``: the best trial of a search, whatever other trials did)."""
        from resnet_lab.tracking.ui_view import pointer_lines

        run = tracking.Run(self.client, self.run_id)
        best = [r.data.metrics["test_accuracy"] for r in runs if "test_accuracy" in r.data.metrics]
        if best:  # so the experiment's run list shows each sweep's best result
            run.log_metrics({"best_test_accuracy": max(best)}, step=0)
        run.set_tags(dict(tags))
        champion = sweep_champion(config, self.client, self.run_id, runs if champion_from is None else champion_from,
                                  failed if champion_from is None else [])
        self.close("FAILED" if failed else "FINISHED")
        parent = self.run
        print("\n".join(["", f"{headline}", *body, "", f"parent run {self.run_id}: {artifacts} in "
                         f"{parent.info.artifact_uri}", *([champion.line()] if champion is not None else []),
                         *pointer_lines(self.uri, parent.info.experiment_id)]), flush=True)
        if failed:
            print(failure, file=sys.stderr)
            sys.exit(1)


def description(verdict: Any, note: str, *more: str) -> str:
    """The parent's description: the verdict in short, then what follows (the pairwise table, what the sweep was
    over, its rounds)."""
    if verdict is None:
        return "\n\n".join(part for part in (note, *more) if part)
    from resnet_lab.compare.render import pairwise_report

    table = pairwise_report(verdict, "markdown") if verdict.pairs else ""
    return "\n\n".join(part for part in (f"**{verdict.short()}**", *more, table, note) if part)


def sweep_champion(config: DictConfig, client: Any, parent_id: str, runs: Sequence[Any], failed: List[str]) -> Any:
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


def sweep_tags(config: DictConfig, keys: Sequence[str]) -> Dict[str, Any]:
    """What every parent says of its sweep: the swept keys and the command line (passwords redacted)."""
    return {tracking.TAG_SWEPT_KEYS: ",".join(keys),
            "overrides": " ".join(tracking.redact_overrides(config.hydra.overrides.task))}
