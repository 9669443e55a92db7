"""One MLflow run: opened or reopened, logged to in batches, and always ended FINISHED, FAILED or KILLED,
never left RUNNING."""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import subprocess
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

from resnet_lab.errors import DiskFull
from resnet_lab.runtime.interrupts import deferred_interrupt, uninterrupted
from resnet_lab.tracking.store import client_for, exception_chain, experiment_id, is_disk_full, store_path
from resnet_lab.tracking.tags import TAG_ERROR

log = logging.getLogger(__name__)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Dict[str, str]:
    """Nested config -> ``{"model.block.type": "basic", ...}``; lists stay readable strings."""
    flat: Dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def git_commit(path: Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class Run:
    """One MLflow run of one store, with batched logging helpers."""

    def __init__(self, client, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    @uninterrupted
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    @uninterrupted
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    @uninterrupted
    def log_metrics(self, metrics: Mapping[str, float], step: int, model_id: Optional[str] = None) -> None:
        """``model_id``: the metrics are also the LoggedModel's (its row on the Models page shows them)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step, model_id=model_id) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    @uninterrupted
    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    @uninterrupted
    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)


@contextlib.contextmanager
def start_run(
    uri: str, experiment: str, run_name: str, tags: Optional[Mapping[str, Any]] = None,
    parent_run_id: Optional[str] = None, resume_run_id: Optional[str] = None,
) -> Iterator[Run]:
    """Create a run (or reopen ``resume_run_id``, giving it ``tags`` and ``parent_run_id`` anew), yield it, and
    always end it: FINISHED, FAILED (error kept as a tag) or KILLED."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from resnet_lab.runtime.slurm import scheduler_tags

    client = client_for(uri)
    with deferred_interrupt():
        if resume_run_id:
            client.update_run(resume_run_id, status="RUNNING")
            with contextlib.suppress(Exception):  # the reason it stopped no longer holds
                client.delete_tag(resume_run_id, TAG_ERROR)
            run = Run(client, resume_run_id)
            # The sweep that continues the run now holds it (its parent, sweep folder and job number),
            # and the Slurm job that runs it is the one named.
            moved = {**(tags or {}), **({MLFLOW_PARENT_RUN_ID: parent_run_id} if parent_run_id else {})}
            run.set_tags({**moved, **scheduler_tags()})
        else:
            all_tags = {**(tags or {}), **scheduler_tags()}  # the Slurm job that runs it, if any
            if parent_run_id:
                all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
            created = client.create_run(experiment_id(client, experiment, uri), run_name=run_name,
                                        tags={k: str(v) for k, v in all_tags.items() if v is not None})
            run = Run(client, created.info.run_id)
    try:
        yield run
    except KeyboardInterrupt:
        with deferred_interrupt():
            client.set_terminated(run.run_id, "KILLED")
        raise
    except BaseException as exc:
        with deferred_interrupt():
            unrecorded = _end_failed(client, run.run_id, exc)
        full = _as_disk_full(exc, unrecorded, uri)
        if full is not None:
            raise _say_how_to_go_on(full, unrecorded, uri, run.run_id) from exc
        if unrecorded is not None:
            raise unrecorded from exc
        raise
    with deferred_interrupt():
        client.set_terminated(run.run_id, "FINISHED")


TRACEBACK_ARTIFACT = "error/traceback.txt"  # where a FAILED run keeps the traceback its user is not shown


def _end_failed(client: Any, run_id: str, exc: BaseException) -> Optional[Exception]:
    """End the run FAILED with the reason and the traceback; what the store raised instead, if it could not."""
    with contextlib.suppress(Exception):
        client.set_tag(run_id, TAG_ERROR, f"{type(exc).__name__}: {exc}"[:5000])
    with contextlib.suppress(Exception):  # a help for whoever looks into it, never a second failure
        client.log_text(run_id, full_traceback(exc), TRACEBACK_ARTIFACT)
    try:
        client.set_terminated(run_id, "FAILED")
    except Exception as unrecorded:
        return unrecorded
    return None


def full_traceback(exc: BaseException) -> str:
    """The traceback of every exception in the chain, the first cause first."""
    parts = ["".join(traceback.format_exception(e, chain=False)) for e in exception_chain(exc)]
    return "\nwhich then raised:\n\n".join(reversed(parts))


def _as_disk_full(exc: BaseException, unrecorded: Optional[Exception], uri: str) -> Optional[DiskFull]:
    """A full disk in words, whichever write found it: a checkpoint (already a DiskFull), another file, or the
    store; None for other failures."""
    if isinstance(exc, DiskFull):
        return exc
    for error in exception_chain(exc):
        if isinstance(error, OSError) and error.errno == errno.ENOSPC and error.filename:
            path = Path(error.filename)
            return DiskFull(path.parent, path.name, None, shutil.disk_usage(path.parent).free)
    store = store_path(uri)
    if store is not None and (is_disk_full(exc) or is_disk_full(unrecorded)):
        return DiskFull(store.parent, f"to the MLflow store {store}", None, _free(store))
    return None


def _say_how_to_go_on(exc: DiskFull, unrecorded: Optional[Exception], uri: str, run_id: str) -> DiskFull:
    """The end of a full disk's line: whether the store recorded the run's end, and how to continue the run."""
    store = store_path(uri)
    if unrecorded is None:
        return exc.with_note(f"MLflow run {run_id} is FAILED: free some space, then rerun with trainer.resume=true "
                             f"to continue it")
    where = f"the MLflow store {store or uri}"
    full = f" is on a full disk too ({_free(store):,} bytes free)" if is_disk_full(unrecorded) else " failed"
    return exc.with_note(f"{where}{full} and could not record the run's end, so MLflow run {run_id} still shows "
                         f"RUNNING: free some space, then rerun with trainer.resume=true to continue it")


def _free(path: Optional[Path]) -> int:
    return shutil.disk_usage(path.parent).free if path is not None else 0


SYSTEM_METRICS_SECONDS = 5  # sampling interval of MLflow's system metrics: several points even in short runs


@contextlib.contextmanager
def system_metrics(run: Optional[Run], uri: Optional[str], enabled: bool) -> Iterator[None]:
    """MLflow's system metrics (CPU, memory, disk, network; GPU where present) for ``run`` while inside."""
    if not enabled or run is None:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run.run_id, sampling_interval=SYSTEM_METRICS_SECONDS, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
        _publish_last_window(monitor)


def _publish_last_window(monitor: Any) -> None:
    """MLflow drops the samples of the window the run's end cuts short: a run shorter than one sampling
    interval would have no system metrics at all."""
    try:
        metrics = monitor.aggregate_metrics()
        if metrics:
            monitor.publish_metrics(metrics)
            monitor.mlflow_logger.flush()
    except Exception as exc:  # system metrics are a help, never a reason for a run to fail
        log.warning("system metrics: the last samples were not logged (%s)", exc)


def logged_steps(run: Run, key: str) -> set:
    return {m.step for m in run.client.get_metric_history(run.run_id, key)}
