"""Everything MLflow: the store, runs and their tags, searching runs, and what a run logs (model, data sets, UI view).

``from resnet_lab import tracking`` gives the names most callers need; none of them imports MLflow until called.
"""

from resnet_lab.tracking.credentials import (AccessRefused, check_credentials, credentials_from_uri_args,
                                             public_config, redact_files, redact_overrides, redact_uri)
from resnet_lab.tracking.run import Run, flatten, git_commit, logged_steps, start_run, system_metrics
from resnet_lab.tracking.search import (find_resumable_run, find_runs, find_sweep_parent, finished_twin, latest_sweep,
                                       search_runs, sweep_parent)
from resnet_lab.tracking.store import (ARTIFACT_DIR, DB_FILE, artifact_root, check_reachable, client_for,
                                       experiment_id, launch_dir, quiet_mlflow, resolve_uri, with_retries)
from resnet_lab.tracking.tags import (TAG_CHECKPOINT_DIR, TAG_CONFIG_HASH, TAG_ERROR, TAG_FAILED_EPOCH, TAG_GROUP,
                                      TAG_GROUP_HASH, TAG_JOB_NUM, TAG_PRUNED_EPOCH, TAG_REDONE_EPOCHS, TAG_ROLE,
                                      TAG_STUDY, TAG_SWEEP_DIR, TAG_SWEPT_KEYS, TAG_TEST_SPLIT, TAG_TRIAL)

__all__ = [
    "AccessRefused", "check_credentials", "credentials_from_uri_args", "public_config", "redact_files",
    "redact_overrides", "redact_uri", "Run", "flatten", "git_commit", "logged_steps", "start_run", "system_metrics",
    "find_resumable_run", "find_runs", "find_sweep_parent", "latest_sweep", "finished_twin", "search_runs", "sweep_parent", "ARTIFACT_DIR",
    "DB_FILE", "artifact_root", "check_reachable", "client_for", "experiment_id", "launch_dir", "quiet_mlflow",
    "resolve_uri", "with_retries", "TAG_CHECKPOINT_DIR", "TAG_CONFIG_HASH", "TAG_ERROR", "TAG_FAILED_EPOCH",
    "TAG_GROUP", "TAG_GROUP_HASH", "TAG_JOB_NUM", "TAG_PRUNED_EPOCH", "TAG_REDONE_EPOCHS", "TAG_ROLE", "TAG_STUDY",
    "TAG_SWEEP_DIR", "TAG_SWEPT_KEYS", "TAG_TEST_SPLIT", "TAG_TRIAL",
]
