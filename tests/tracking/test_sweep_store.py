"""The store under parallel writers: a locked database or a lost insert race is retried, never lost."""

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


def log_the_same_data_in_each_experiment(uri, experiment_ids, barrier, retries, failures):
    """One sweep job: a run per experiment, each logging the same three splits at the same moment
    as the other jobs, the way parallel jobs of a sweep start."""
    from types import SimpleNamespace

    import numpy as np

    from resnet_lab.tracking.dataset_logging import log_datasets

    rng = np.random.default_rng(0)
    arrays = {k: rng.random((4, 2, 2, 1), dtype=np.float32) for k in ("x_train", "x_val", "x_test")}
    splits = SimpleNamespace(**arrays, y_train=np.arange(4), y_val=np.arange(4), y_test=np.arange(4),
                             num_classes=4, class_names=None)
    data = SimpleNamespace(name="synthetic", path=None, split_seed=0)
    client = tracking.client_for(uri)
    if not retries:
        client = client._client  # MLflow's own client: one try per call
    for experiment in experiment_ids:
        run = client.create_run(experiment)
        barrier.wait()
        try:
            log_datasets(tracking.Run(client, run.info.run_id), splits, data)
        except Exception as exc:
            failures.put(str(exc).splitlines()[0][:200])


@pytest.mark.parametrize("retries", [True, False], ids=["with-retries", "single-try"])
def test_parallel_jobs_logging_the_same_data_set_lose_no_input(tmp_path, tmp_store, retries):
    import multiprocessing

    jobs, rounds = 4, 8
    client = tracking.client_for(tmp_store)
    experiments = [client.create_experiment(f"round-{i}") for i in range(rounds)]
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(jobs), context.Queue()
    workers = [context.Process(target=log_the_same_data_in_each_experiment,
                               args=(tmp_store, experiments, barrier, retries, failures)) for _ in range(jobs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    if not retries:  # the race is real: without the retry some job loses its inputs
        assert any("UNIQUE constraint failed: datasets." in e for e in errors), errors
        return
    assert errors == []
    for experiment in experiments:
        runs = client.search_runs([experiment])
        assert len(runs) == jobs
        for run in runs:
            contexts = sorted(tag.value for d in run.inputs.dataset_inputs for tag in d.tags)
            assert contexts == ["test", "train", "validation"]
