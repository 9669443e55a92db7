"""A sweep's champion: its best group's best run, registered as a new model version with the alias ``champion``.

Chosen by a validation metric (``tracking.champion_metric``), never the test metric, so that the test set
stays a test. Groups are the sweep's configurations (``resnet_lab.group_hash``: runs that differ only in
the seed); the best group has the best mean, and its best run is the champion. A ``debug=tiny`` sweep
registers under ``<name>-debug``, so that a smoke test never takes ``champion`` from a real model.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from resnet_lab.tracking.tags import TAG_GROUP, TAG_GROUP_HASH, TAG_PRUNED_EPOCH

ALIAS = "champion"
DEBUG_SUFFIX = "-debug"


@dataclass
class Champion:
    """What the sweep's summary says about its champion: registered, or why not."""

    name: Optional[str] = None
    version: Optional[str] = None
    run: Any = None
    metric: str = ""
    value: Optional[float] = None
    skipped: Optional[str] = None  # why no version was registered

    def line(self) -> str:
        if self.skipped:
            return f"champion: none registered: {self.skipped}"
        group = self.run.data.tags.get(TAG_GROUP, self.run.info.run_name)
        seed = self.run.data.params.get("seed", "?")
        return (f"champion: version {self.version} of {self.name!r} = {group} seed {seed} "
                f"({self.metric} {self.value:.4f}, chosen on validation data); deploy: "
                f"`mlflow models serve -m models:/{self.name}@{ALIAS}`")


def registry_name(experiment: str, register_model: Optional[str], debug: bool) -> str:
    """The registered model a sweep's champion goes to: ``tracking.register_model`` or the experiment's name
    (its last path part, without the characters the registry refuses)."""
    name = register_model or experiment.rstrip("/").rsplit("/", 1)[-1].replace(":", "-").replace("@", "-")
    return name + DEBUG_SUFFIX if debug else name


def pick(runs: Sequence[Any], metric: str) -> Optional[Any]:
    """The best group's best run by ``metric`` (losses lowest, the rest highest); None if no run has both the
    metric and a logged model. A run its search pruned is never one."""
    lower_is_better = metric.endswith("loss")
    sign = -1.0 if lower_is_better else 1.0
    groups: Dict[str, List[Any]] = {}
    for run in runs:
        if metric in run.data.metrics and run.outputs and run.outputs.model_outputs and \
                TAG_PRUNED_EPOCH not in run.data.tags:
            groups.setdefault(run.data.tags.get(TAG_GROUP_HASH, run.info.run_id), []).append(run)
    if not groups:
        return None
    best_group = max(groups.values(), key=lambda group: sign * statistics.fmean(r.data.metrics[metric] for r in group))
    return max(best_group, key=lambda run: sign * run.data.metrics[metric])


def register_champion(client: Any, runs: Sequence[Any], name: str, metric: str, sweep_run_id: str) -> Champion:
    """Register the sweep's champion as a new version of ``name`` and point the alias ``champion`` at it."""
    from resnet_lab.tracking.model_logging import register

    best = pick(runs, metric)
    if best is None:
        return Champion(metric=metric, skipped=f"no run has both {metric} and a logged model")
    current = _current(client, name)
    if current is not None and current.run_id == best.info.run_id:  # a rerun that changed nothing: no new version
        return Champion(name, str(current.version), best, metric, best.data.metrics[metric])
    model_id = best.outputs.model_outputs[-1].model_id
    version = register(client, model_id, best.info.run_id, name,
                       tags={"resnet_lab.sweep_run_id": sweep_run_id, metric: best.data.metrics[metric]})
    client.set_registered_model_alias(name, ALIAS, version.version)
    return Champion(name, str(version.version), best, metric, best.data.metrics[metric])


def _current(client: Any, name: str) -> Optional[Any]:
    """The version the alias ``champion`` of ``name`` points at, if any."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None  # no such model, or no champion yet
