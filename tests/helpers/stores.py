"""MLflow stores in a test's folder: started from an already migrated database, read back as users do."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any, List, Tuple

from mlflow.tracking import MlflowClient

ROLE = "resnet_lab.role"


def migrated_database(folder: Path) -> Path:
    """An empty SQLite store with MLflow's tables made: creating them costs seconds, copying the file nothing."""
    path = folder / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


def seed_store(template: Path, folder: Path) -> str:
    """Put a copy of the migrated ``template`` at ``folder/mlflow.db`` (where the commands look by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def store(folder: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")


def runs_in(folder: Path, experiment: str) -> Tuple[MlflowClient, List[Any]]:
    """The client and every run of ``experiment`` (none if the experiment does not exist)."""
    client = store(folder)
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id]) if found else []


def sweep_runs(folder: Path, experiment: str = "resnet-lab") -> Tuple[MlflowClient, List[Any], List[Any]]:
    """The client, the sweep parents and the training runs of ``experiment``."""
    client, runs = runs_in(folder, experiment)
    parents = [r for r in runs if r.data.tags.get(ROLE) == "sweep"]
    children = [r for r in runs if r.data.tags.get(ROLE) == "train"]
    return client, parents, children


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed
