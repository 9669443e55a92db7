"""The team setup, started as a user starts it: the one-node Slurm cluster (scripts/slurm-local.sh) and the
PostgreSQL-backed MLflow server with authentication (scripts/tracking-server.sh), each on free ports and
in folders of the test session.

A service that cannot start is a skip with the reason on a developer's machine, and a failure in CI
(``CI=true``), where the tests must run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, NoReturn

import pytest

from helpers.configs import REPO
from helpers.processes import BIN
from helpers.stores import closed_port

SCRIPTS = REPO / "scripts"
SLURM_PACKAGES = ("munged", "slurmctld", "slurmd", "sinfo")


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason, or fail when CI=true: CI installs the services and must run these tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the cluster tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def script(name: str, command: str, env: Dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``scripts/<name> <command>`` with the venv first on PATH (its mlflow, its Python)."""
    full = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.environ['PATH'])}"}
    return subprocess.run(["bash", str(SCRIPTS / name), command], env=full, capture_output=True, text=True,
                          timeout=timeout)


@dataclass
class SlurmCluster:
    state: Path
    env: Dict[str, str]  # what `scripts/slurm-local.sh env` sets: SLURM_CONF, and PATH with its sacct

    def sacct_states(self, *job_ids: str) -> Dict[str, str]:
        """Each job's state, as `sacct` reports it."""
        out = subprocess.run(["sacct", "-o", "JobID,State", "--parsable2", *[f"-j{j}" for j in job_ids]],
                             env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60).stdout
        return dict(line.split("|")[:2] for line in out.splitlines()[1:] if "|" in line)

    def queue(self) -> str:
        return subprocess.run(["squeue", "--noheader", "--format=%i %T"], env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=60).stdout


@contextlib.contextmanager
def slurm_cluster(state: Path) -> Iterator[SlurmCluster]:
    missing = [tool for tool in SLURM_PACKAGES if shutil.which(tool) is None]
    if missing:
        unavailable(f"Slurm is not installed ({', '.join(missing)} missing): apt-get install -y slurm-wlm munge")
    env = {"RESNET_LAB_SLURM_DIR": str(state), "RESNET_LAB_SLURMCTLD_PORT": str(closed_port()),
           "RESNET_LAB_SLURMD_PORT": str(closed_port())}
    started = script("slurm-local.sh", "start", env)
    try:
        if started.returncode != 0:
            unavailable(f"the local Slurm cluster did not start: {started.stderr.strip()[-1500:]}")
        exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
                       if line.startswith("export "))
        exports["PATH"] = exports["PATH"].replace("$PATH", os.environ["PATH"])
        yield SlurmCluster(state, exports)
    finally:
        script("slurm-local.sh", "stop", env)


@dataclass
class TrackingServer:
    state: Path
    url: str
    env: Dict[str, str]  # the script's settings: state folders and ports
    credentials: Dict[str, str] = field(default_factory=dict)  # MLFLOW_TRACKING_USERNAME / _PASSWORD of `lab`

    def client(self):
        """A client of the server, logged in as `lab` (the session's environment holds its credentials)."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.url)

    def kill(self) -> None:
        """Kill the server hard (SIGKILL to it and its workers), as a crash would; the database stays up."""
        pid = int((self.state / "server.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def start(self) -> subprocess.CompletedProcess:
        started = script("tracking-server.sh", "start", self.env)
        assert started.returncode == 0, started.stderr[-3000:]
        return started


@contextlib.contextmanager
def tracking_server(state: Path) -> Iterator[TrackingServer]:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        unavailable("PostgreSQL is not installed: apt-get install -y postgresql")
    # The database belongs to the postgres user when run as root: a folder it can reach, outside
    # pytest's private temporary folders.
    pgdata = Path(tempfile.mkdtemp(prefix="resnet-lab-pg-"))
    port = closed_port()
    env = {"RESNET_LAB_TRACKING_DIR": str(state), "RESNET_LAB_PGDATA": str(pgdata), "RESNET_LAB_PG_PORT": str(closed_port()),
           "RESNET_LAB_TRACKING_PORT": str(port)}
    server = TrackingServer(state, f"http://127.0.0.1:{port}", env)
    started = script("tracking-server.sh", "start", env)
    try:
        if started.returncode != 0:
            unavailable(f"the tracking server did not start: {started.stderr.strip()[-1500:]}")
        exports = script("tracking-server.sh", "env", env).stdout
        server.credentials = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
        with logged_in(server.credentials):
            yield server
    finally:
        script("tracking-server.sh", "stop", env)
        shutil.rmtree(pgdata, ignore_errors=True)


@contextlib.contextmanager
def logged_in(credentials: Dict[str, str]) -> Iterator[None]:
    """The test process (and every command it starts) logs in with these credentials while inside."""
    before = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
