"""Where the MLflow store is, a client for it that waits out a busy SQLite file, and its experiments.

All calls go through an explicit ``MlflowClient`` for one store, so tests and sweeps never share hidden
global state.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import random
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence
from urllib.parse import urlsplit

from resnet_lab.errors import ConfigError, StoreDamaged
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
    return any(text in str(e) for e in exception_chain(exc) for text in _RETRYABLE)


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
        if name == "_client" or name.startswith("__"):  # unpickling looks these up before ``_client`` is set
            raise AttributeError(name)
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return with_retries(attribute, *args, **kwargs)

        return call


def client_for(uri: str) -> RetryingClient:
    """A client for the store at ``uri``. The process's first also imports MLflow and opens its store (which MLflow
    keeps for the process): built to stay, out of the garbage collector's way (``runtime.heap``)."""
    from resnet_lab.runtime import heap

    first = "mlflow.tracking" not in sys.modules
    with heap.kept_for_good() if first else contextlib.nullcontext():
        from mlflow.tracking import MlflowClient

        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return RetryingClient(MlflowClient(tracking_uri=uri))


def store_path(uri: str) -> Optional[Path]:
    """The database file of a SQLite store; None for other stores."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def exception_chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it, also those re-raised ``from None`` (Keras does, to shorten tracebacks)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_disk_full(exc: Optional[BaseException]) -> bool:
    """A write that found its disk full: a file's ENOSPC, or SQLite's SQLITE_FULL, anywhere in the chain."""
    return any((isinstance(e, OSError) and e.errno == errno.ENOSPC) or "database or disk is full" in str(e)
               for e in exception_chain(exc))


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, before any training, when a tracking server does not answer or a SQLite store
    cannot be opened.

    MLflow's own HTTP client retries with backoff for minutes, so a typo in the port would
    otherwise surface only after the first epoch, or hang a sweep.
    """
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        check_store(uri)
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


def check_store(uri: str) -> None:
    """Open an existing SQLite store as MLflow does and take its write lock once, waiting out other writers
    as every write does; a store that is damaged, locked for longer or of another MLflow raises StoreDamaged
    naming the cause, before any run is created."""
    path = store_path(uri)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return  # MLflow creates a new store there
    started = time.monotonic()
    try:
        with_retries(_open_for_writing, uri, path)
    except Exception as exc:
        raise StoreDamaged(f"the MLflow store {path} {_store_fault(exc, path, time.monotonic() - started)}") from exc


def _open_for_writing(uri: str, path: Path) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # MLflow's own schema check
    with contextlib.closing(sqlite3.connect(path, timeout=5.0, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")  # the lock every write takes: held by another process, this waits
        db.execute("ROLLBACK")


def _store_fault(exc: BaseException, path: Path, waited: float) -> str:
    """The cause of a store that would not open, in words."""
    text = " ".join(str(e) for e in exception_chain(exc))
    elsewhere = "or point tracking.uri at another store"
    if "file is not a database" in text:
        return f"is not a SQLite database (file is not a database): move it away, {elsewhere}"
    if "database is locked" in text:
        return f"is locked by another process for {waited:.0f} s: end that process or wait for it, {elsewhere}"
    if "out-of-date database schema" in text:
        return _schema_fault(path)
    return f"cannot be opened ({str(exc).strip().splitlines()[0]}): repair it, {elsewhere}"


def _schema_fault(path: Path) -> str:
    """Whether the store's schema is older than this MLflow (it can migrate it) or newer (only a newer MLflow
    reads it), from the revision it records and the migrations this MLflow ships."""
    from importlib.resources import files

    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        (found,), = db.execute("SELECT version_num FROM alembic_version").fetchall()
    known = ScriptDirectory(str(files("mlflow") / "store" / "db_migrations"))
    try:
        known.get_revision(found)
    except CommandError:
        return f"has a schema newer than this MLflow (revision {found}): upgrade MLflow to the version that wrote it"
    return (f"has a schema older than this MLflow (revision {found}, this MLflow writes {known.get_current_head()}): "
            f"back it up, then migrate it with: mlflow db upgrade sqlite:///{path}")


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
    # It logs each database error with its traceback before raising it: the raised error is handled (a full
    # disk, a locked store) and becomes one line, which that traceback would bury.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
