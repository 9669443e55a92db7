"""Finding runs again: a sweep's parent and its runs (``resnet-lab-compare``), a finished twin of a config, a run to
resume."""

from __future__ import annotations

import sys
from typing import Any, List, Mapping, Optional

from resnet_lab.errors import ConfigError

from resnet_lab.tracking.store import client_for
from resnet_lab.tracking.tags import TAG_CHECKPOINT_DIR, TAG_CONFIG_HASH, TAG_PRUNED_EPOCH, TAG_ROLE, TAG_SWEEP_DIR


def search_runs(uri: str, experiment: str, filter_string: str, **kwargs: Any) -> List[Any]:
    """Runs of one experiment matching an MLflow filter; none when the experiment does not exist yet."""
    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(client.search_runs([found.experiment_id], filter_string=filter_string, **kwargs))


def sweep_parent(uri: str, experiment: str, sweep_dir: str) -> Optional[Any]:
    """The parent run that the sweep callback opened for this multirun, if any."""
    runs = search_runs(uri, experiment, f"tags.`{TAG_ROLE}` = 'sweep' and tags.`{TAG_SWEEP_DIR}` = '{sweep_dir}'",
                   max_results=1)
    return runs[0] if runs else None


def find_sweep_parent(uri: str, experiment: str, sweep_dir: str) -> Optional[str]:
    parent = sweep_parent(uri, experiment, sweep_dir)
    return parent.info.run_id if parent is not None else None


def finished_twin(uri: str, experiment: str, identity: str):
    """The latest FINISHED training run with this config hash, if any (``tracking.skip_finished``); a run its
    search pruned ended FINISHED but did not train its epochs, so it is never one."""
    runs = search_runs(uri, experiment, f"tags.`{TAG_CONFIG_HASH}` = '{identity}' and tags.`{TAG_ROLE}` = 'train' "
                                    "and attributes.status = 'FINISHED'",
                   order_by=["attributes.start_time DESC"], max_results=100)
    whole = [r for r in runs if TAG_PRUNED_EPOCH not in r.data.tags]
    return whole[0] if whole else None


def find_resumable_run(uri: str, experiment: str, config_hash: str) -> Optional[Any]:
    """The newest training run of this config that did not finish and says where its checkpoint is."""
    runs = search_runs(uri, experiment, f"tags.`{TAG_CONFIG_HASH}` = '{config_hash}' and tags.`{TAG_ROLE}` = 'train'",
                   order_by=["attributes.start_time DESC"])
    unfinished = [r for r in runs if r.info.status != "FINISHED" and TAG_CHECKPOINT_DIR in r.data.tags]
    return unfinished[0] if unfinished else None


def find_runs(client: Any, experiment: str, parent: Optional[str], tags: Mapping[str, str],
              status: Optional[str]) -> List[Any]:
    """Training runs of one experiment, optionally of one sweep (``parent``: a run id or ``latest``)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    found = client.get_experiment_by_name(experiment)
    if found is None and parent != "latest":
        names = sorted(e.name for e in client.search_experiments())
        raise ConfigError("compare.experiment", experiment,
                          "an experiment of the store: " + (", ".join(names) or "none yet"))
    ids = [found.experiment_id] if found is not None else []
    filters = [f"tags.`{TAG_ROLE}` = 'train'"]
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
        if not token:  # a pruned run ended FINISHED without its epochs: not a finished result
            return [r for r in runs if status != "FINISHED" or TAG_PRUNED_EPOCH not in r.data.tags]


def latest_sweep(client: Any, ids: List[str], experiment: str) -> Any:
    """The newest sweep of the experiment; if it has none, the newest of any experiment (say which)."""
    newest = {"filter_string": f"tags.`{TAG_ROLE}` = 'sweep'", "order_by": ["attributes.start_time DESC"],
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


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
