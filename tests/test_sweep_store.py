"""The SQLite store under parallel writers: a locked database is waited out, never lost."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from resnet_lab import tracking

# Longer than the 20 s busy timeout MLflow gives SQLite, so a write without retries must fail.
LOCK_SECONDS = 21.0


def hold_exclusive_lock(db_path, seconds, locked: threading.Event):
    connection = sqlite3.connect(str(db_path), timeout=0)
    connection.execute("BEGIN EXCLUSIVE")
    locked.set()
    time.sleep(seconds)
    connection.rollback()
    connection.close()


@pytest.mark.slow
def test_a_write_to_a_locked_store_retries_and_succeeds_where_a_single_try_fails(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking.start_run(uri, "tests", "locked") as run:
        run.log_metrics({"loss": 1.0}, step=1)  # the store exists before another process locks it
    client = tracking.client_for(uri)
    run_id = run.run_id
    locked = threading.Event()
    holder = threading.Thread(target=hold_exclusive_lock, args=(tmp_path / "mlflow.db", LOCK_SECONDS, locked))
    holder.start()
    locked.wait(5)
    outcome = {}

    def single_try():
        try:
            tracking.with_retries(client._client.set_tag, run_id, "single", "yes", delays=())
            outcome["single"] = "written"
        except Exception as exc:  # what a job would die of without retries
            outcome["single"] = str(exc)

    lone = threading.Thread(target=single_try)
    lone.start()
    started = time.monotonic()
    tracking.Run(client, run_id).log_metrics({"loss": 0.5}, step=2)
    waited = time.monotonic() - started
    lone.join()
    holder.join()
    assert "database is locked" in outcome["single"]
    assert waited >= LOCK_SECONDS - 1.0  # it really waited for the lock to go
    history = client.get_metric_history(run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]  # written exactly once


def test_a_lock_error_anywhere_in_the_chain_is_retried_until_the_write_goes_through():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            try:
                raise RuntimeError("(sqlite3.OperationalError) database is locked")
            except RuntimeError as cause:
                raise ValueError("TEMPORARILY_UNAVAILABLE") from cause
        return "written"

    assert tracking.with_retries(flaky, delays=(0.0, 0.0, 0.0)) == "written"
    assert len(calls) == 3


def test_only_lock_errors_are_retried():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("no such table: runs")

    with pytest.raises(ValueError, match="no such table"):
        tracking.with_retries(broken, delays=(0.0, 0.0))
    assert len(calls) == 1
