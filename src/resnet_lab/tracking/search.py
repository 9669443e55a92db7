"""Finding runs again: a sweep's parent, a finished twin of a config, a run to resume."""

from __future__ import annotations

from typing import Any, List, Optional

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
