"""Where the MLflow store is, a client for it that waits out a busy SQLite file, and its experiments.

All calls go through an explicit ``MlflowClient`` for one store, so tests and sweeps never share hidden
global state.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlsplit

from resnet_lab.errors import ConfigError
from resnet_lab.tracking.credentials import check_credentials, redact_uri
from resnet_lab.tracking.tags import TAG_GROUP

log = logging.getLogger(__name__)

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


def experiment_id(client, name: str, uri: str) -> str:
    """The experiment's id, created if need be, and marked for the MLflow UI as model training with the
    comparison view (also an older experiment the project logs into)."""
    from resnet_lab.tracking.ui_view import mark_for_model_training

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


def quiet_mlflow() -> None:
    """MLflow's store migrations and hints are noise on a training console."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is first imported
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
