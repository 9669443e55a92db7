"""Everything MLflow: where the store is, run lifecycle, params, tags, metrics and artifacts.

All calls go through an explicit ``MlflowClient`` for one store, so tests and sweeps never share
hidden global state, and a run always ends FINISHED, FAILED or KILLED, never RUNNING.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence
from urllib.parse import unquote, urlsplit

from resnet_lab.errors import ConfigError, UserError

from resnet_lab.interrupts import deferred_interrupt, uninterrupted

log = logging.getLogger(__name__)

# Tags that identify what a run is, so the MLflow UI can sort and group by them.
TAG_ROLE = "resnet_lab.role"  # "train" or "sweep"
TAG_SWEEP_DIR = "resnet_lab.sweep_dir"
TAG_ERROR = "resnet_lab.error"
TAG_CONFIG_HASH = "resnet_lab.config_hash"  # identical configs share it (see identity.py)
TAG_GROUP_HASH = "resnet_lab.group_hash"  # configs that differ only in the seed share it: repeats, compared as a group
TAG_GROUP = "resnet_lab.group"  # the same, readable: the run name without the seed (what the MLflow UI groups by)
TAG_JOB_NUM = "resnet_lab.job_num"  # a sweep job's number, as in its output folder
TAG_SWEPT_KEYS = "resnet_lab.swept_keys"  # on a sweep's parent: the keys that vary between its jobs
TAG_CHECKPOINT_DIR = "resnet_lab.checkpoint_dir"  # absolute folder of the run's checkpoints, for resuming
TAG_FAILED_EPOCH = "resnet_lab.failed_epoch"  # the epoch whose loss diverged
DB_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"


def launch_dir() -> Path:
    """The directory the command was started from, even inside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    return Path.cwd()


def resolve_uri(uri: Optional[str], base: Optional[Path] = None) -> str:
    """Make the tracking URI absolute: a relative store would scatter into Hydra's output folders."""
    base = (base or launch_dir()).resolve()
    if uri is None:
        return f"sqlite:///{base / DB_FILE}"
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        return f"sqlite:///{path if path.is_absolute() else (base / path).resolve()}"
    if "://" not in uri:  # a plain path names a SQLite file or a folder to hold one
        path = Path(uri).expanduser()
        path = path if path.is_absolute() else base / path
        return f"sqlite:///{(path / DB_FILE if path.suffix != '.db' else path).resolve()}"
    return uri


def artifact_root(uri: str) -> Optional[str]:
    """Artifacts of a SQLite store go beside the database file, never into the working directory."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / ARTIFACT_DIR).as_uri()
    return None  # a tracking server decides for itself


# SQLite lets one writer in at a time; parallel sweep jobs that wait longer than its busy timeout
# (5 s) get "database is locked". The write was rolled back, so trying again is safe.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0)  # seconds, about a minute in all
_RETRYABLE = (
    "database is locked", "database table is locked", "database schema is locked",
    # Parallel jobs logging the same data set: MLflow looks the dataset row up, then inserts it, so the
    # slower job's insert collides (SQLite, PostgreSQL). Its transaction was rolled back; on the retry
    # the lookup finds the row and only the run's own input is written.
    "UNIQUE constraint failed: datasets.", 'unique constraint "dataset_pk"',
)


def is_retryable(exc: BaseException) -> bool:
    """A transient lock of the store, or a lost get-or-create race, anywhere in the exception chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(text in str(exc) for text in _RETRYABLE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def with_retries(call: Callable[..., Any], *args: Any, delays: Sequence[float] = RETRY_DELAYS, **kwargs: Any) -> Any:
    """Call, and on a locked store wait (with jitter, so parallel jobs do not collide again) and retry."""
    for attempt, delay in enumerate((*delays, None)):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if delay is None or not is_retryable(exc):
                raise
            pause = delay * random.uniform(0.5, 1.5)
            log.warning("MLflow store is busy with another writer (%s); retry %d in %.1f s",
                        getattr(call, "__name__", "call"), attempt + 1, pause)
            time.sleep(pause)


class RetryingClient:
    """An ``MlflowClient`` whose every call retries while the SQLite store is locked: the one place
    where tracking writes (and reads) from parallel jobs wait for each other."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return with_retries(attribute, *args, **kwargs)

        return call


def client_for(uri: str) -> RetryingClient:
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return RetryingClient(MlflowClient(tracking_uri=uri))


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, before any training, when a tracking server does not answer.

    MLflow's own HTTP client retries with backoff for minutes, so a typo in the port would
    otherwise surface only after the first epoch, or hang a sweep.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError("tracking.uri", redact_uri(uri),
                          f"a reachable MLflow tracking server ({reason}); start it, or use a sqlite:/// store")
    check_credentials(uri)


def check_credentials(uri: str) -> None:
    """A server with authentication (``mlflow server --app-name basic-auth``) refuses a job without valid
    credentials: say so in one line before any run exists, rather than in a traceback from inside MLflow."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except MlflowException as exc:
        status = exc.get_http_status_code()
        if status in (401, 403):
            raise AccessRefused(redact_uri(uri), os.environ.get("MLFLOW_TRACKING_USERNAME")) from None
        if status == 404:  # something listens there, but not MLflow's REST API
            raise ConfigError("tracking.uri", redact_uri(uri), "the URL of an MLflow tracking server (it answered "
                              "HTTP 404 to MLflow's API)") from None
        raise


class AccessRefused(UserError):
    """The tracking server wants credentials it did not get, or refused those it got."""

    def __init__(self, uri: str, user: Optional[str]) -> None:
        if user:
            why = f"refused the credentials of user {user!r}: check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        else:
            why = "asks for credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        super().__init__(f"the MLflow tracking server {uri} {why}")


# `//user:password@` in a URI, also as Hydra escapes it in a sweep job's overrides (`\\:`).
_PASSWORD_IN_URI = re.compile(r"(//[^/@\s]*?:)[^/@\s]*@")


def redact_uri(uri: str) -> str:
    """Drop the password from ``scheme://user:password@host``: credentials never reach a param or tag."""
    return _PASSWORD_IN_URI.sub(r"\1***@", uri)


def credentials_from_uri_args(args: Sequence[str], environ: Dict[str, str]) -> List[str]:
    """``tracking.uri=http://user:password@host`` on a command line: hand the credentials to MLflow's client as
    ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` (in ``environ``, inherited by every job: joblib's workers, Slurm's
    jobs) and keep the URI without them, so the password never reaches Hydra's files, submitit's job
    pickles or a log line that repeats the overrides."""
    kept = []
    for arg in args:
        key, sep, value = arg.partition("=")
        parts = urlsplit(value) if sep and key.lstrip("+~").endswith("tracking.uri") else None
        if parts is not None and parts.scheme in ("http", "https") and parts.username is not None:
            environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
            if parts.password is not None:
                environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
            host = parts.netloc.rpartition("@")[2]
            arg = f"{key}={parts._replace(netloc=host).geturl()}"
        kept.append(arg)
    return kept


def redact_overrides(overrides: Sequence[str]) -> list:
    """Overrides as recorded with a run: URIs without passwords, ``hydra.job.env_set`` values hidden."""
    public = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if "env_set" in key:
            value = "***"
        else:
            value = redact_uri(value)
        public.append(f"{key}{sep}{value}")
    return public


def redact_files(paths: Sequence[Path]) -> None:
    """Rewrite files (Hydra's ``.hydra/*.yaml``, ``multirun.yaml``) with every URI password replaced by ``***``.

    Hydra saves the config and the overrides before a job starts, as given: a ``tracking.uri`` with a
    password would otherwise stay in every job's folder. Parallel jobs may rewrite the same file: each
    writes a complete copy and renames it into place.
    """
    for path in paths:
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError):
            continue
        public = redact_uri(text)
        if public != text:
            spare = path.with_name(f".{path.name}.{os.getpid()}")
            spare.write_text(public)
            os.replace(spare, path)


def public_config(cfg: Any) -> Any:
    """The resolved config as it may be recorded (params, config.yaml): every URI without its password.

    Secrets reach a config only through values such as ``tracking.uri=http://user:pw@host`` or an
    ``${oc.env:...}`` interpolation into one; environment variables are never read or recorded here.
    """
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    if isinstance(tree, Mapping):
        return {key: public_config(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [public_config(value) for value in tree]
    if isinstance(tree, str):
        return redact_uri(tree)
    return tree


def experiment_id(client, name: str, uri: str) -> str:
    """The experiment's id, created if need be, and marked for the MLflow UI as model training with the
    comparison view (also an older experiment the project logs into)."""
    from resnet_lab.ui_view import mark_for_model_training

    found = _find_or_create_experiment(client, name, uri)
    mark_for_model_training(client, found, TAG_GROUP)
    return found


def _find_or_create_experiment(client, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(uri)
    location = f"{root}/{name}" if root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another job of the sweep created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


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
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
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

    from resnet_lab.scheduler import scheduler_tags

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
            with contextlib.suppress(Exception):
                client.set_tag(run.run_id, TAG_ERROR, f"{type(exc).__name__}: {exc}"[:5000])
            client.set_terminated(run.run_id, "FAILED")
        raise
    with deferred_interrupt():
        client.set_terminated(run.run_id, "FINISHED")


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


def _search(uri: str, experiment: str, filter_string: str, **kwargs: Any) -> List[Any]:
    """Runs of one experiment matching an MLflow filter; none when the experiment does not exist yet."""
    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(client.search_runs([found.experiment_id], filter_string=filter_string, **kwargs))


def sweep_parent(uri: str, experiment: str, sweep_dir: str) -> Optional[Any]:
    """The parent run that the sweep callback opened for this multirun, if any."""
    runs = _search(uri, experiment, f"tags.`{TAG_ROLE}` = 'sweep' and tags.`{TAG_SWEEP_DIR}` = '{sweep_dir}'",
                   max_results=1)
    return runs[0] if runs else None


def find_sweep_parent(uri: str, experiment: str, sweep_dir: str) -> Optional[str]:
    parent = sweep_parent(uri, experiment, sweep_dir)
    return parent.info.run_id if parent is not None else None


def finished_twin(uri: str, experiment: str, identity: str):
    """The latest FINISHED training run with this config hash, if any (``tracking.skip_finished``)."""
    runs = _search(uri, experiment, f"tags.`{TAG_CONFIG_HASH}` = '{identity}' and tags.`{TAG_ROLE}` = 'train' "
                                    "and attributes.status = 'FINISHED'",
                   order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def find_resumable_run(uri: str, experiment: str, config_hash: str) -> Optional[Any]:
    """The newest training run of this config that did not finish and says where its checkpoint is."""
    runs = _search(uri, experiment, f"tags.`{TAG_CONFIG_HASH}` = '{config_hash}' and tags.`{TAG_ROLE}` = 'train'",
                   order_by=["attributes.start_time DESC"])
    unfinished = [r for r in runs if r.info.status != "FINISHED" and TAG_CHECKPOINT_DIR in r.data.tags]
    return unfinished[0] if unfinished else None


def logged_steps(run: Run, key: str) -> set:
    return {m.step for m in run.client.get_metric_history(run.run_id, key)}


def quiet_mlflow() -> None:
    """MLflow's store migrations and hints are noise on a training console."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is first imported
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
