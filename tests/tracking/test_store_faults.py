"""A damaged MLflow store is one line that names the store and the cause, exit code 2, and no run: a file
that is not a database, a schema older or newer than this MLflow, a store locked by another process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from helpers.configs import TINY
from helpers.processes import run_cli
from helpers.stores import runs_in

from resnet_lab.errors import StoreDamaged
from resnet_lab.tracking.store import RETRY_DELAYS, check_reachable


def set_revision(database: Path, revision: str) -> None:
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def one_error_line(result: subprocess.CompletedProcess, waited: bool = False) -> str:
    """The one ``error:`` line; before it, only the notices of a wait for a busy store, where one was waited out."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert waited or len(lines) == 1, lines
    assert all("MLflow store is busy with another writer" in line for line in lines[:-1]), lines
    return lines[-1]


def test_a_file_that_is_not_a_database_is_one_line_and_stays_as_it_was(tmp_path):
    garbage = tmp_path / "mlflow.db"
    garbage.write_bytes(os.urandom(8192))
    before = garbage.read_bytes()
    result = run_cli("resnet-lab-train", [*TINY, f"tracking.uri={garbage}"], tmp_path)
    assert one_error_line(result) == (f"error: the MLflow store {garbage} is not a SQLite database (file is not a "
                                      f"database): move it away, or point tracking.uri at another store")
    assert garbage.read_bytes() == before  # nothing written into it


def test_an_older_schema_names_the_command_that_migrates_it(tmp_store):
    database = Path(tmp_store[len("sqlite:///"):])
    known = ScriptDirectory(str(files("mlflow") / "store" / "db_migrations"))
    older = known.get_revision(known.get_current_head()).down_revision
    set_revision(database, older)
    with pytest.raises(StoreDamaged) as refused:
        check_reachable(tmp_store)
    assert str(refused.value) == (
        f"the MLflow store {database} has a schema older than this MLflow (revision {older}, this MLflow writes "
        f"{known.get_current_head()}): back it up, then migrate it with: mlflow db upgrade sqlite:///{database}")


def test_a_newer_schema_says_to_upgrade_mlflow_and_no_run_is_created(tmp_path, tmp_store):
    database = Path(tmp_store[len("sqlite:///"):])
    set_revision(database, "0123456789ab")  # a revision this MLflow does not ship: written by a newer one
    result = run_cli("resnet-lab-train", [*TINY, "tracking.experiment=faults"], tmp_path)
    assert one_error_line(result) == (f"error: the MLflow store {database} has a schema newer than this MLflow "
                                      f"(revision 0123456789ab): upgrade MLflow to the version that wrote it")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM experiments WHERE name = 'faults'").fetchone() == (0,)


@pytest.mark.slow
def test_a_store_locked_by_another_process_is_one_line_after_the_usual_wait(tmp_path, tmp_store):
    database = Path(tmp_store[len("sqlite:///"):])
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = run_cli("resnet-lab-train", [*TINY, "tracking.experiment=faults"], tmp_path)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    line = one_error_line(result, waited=True)
    prefix = f"error: the MLflow store {database} is locked by another process for "
    assert line.startswith(prefix) and line.endswith(
        " s: end that process or wait for it, or point tracking.uri at another store"), line
    waited = int(line[len(prefix):].split(" ")[0])
    assert sum(RETRY_DELAYS) * 0.5 <= waited <= took  # it waited as long as a write would, then said so
    _, runs = runs_in(tmp_path, "faults")
    assert runs == []
