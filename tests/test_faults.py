"""Faults during a real `resnet-lab-train` process: Ctrl-C (SIGINT) and a hard kill (SIGKILL) mid-run,
then `trainer.resume=true`: the same MLflow run finishes with every epoch's metrics exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.configs import TINY
from helpers.processes import run_cli, start_cli
from helpers.stores import runs_in

EPOCHS = 4
# Enough images that an epoch lasts seconds even on a fast machine, so the signal lands inside the run.
ARGS = [*TINY, "data.train_size=8192", f"trainer.epochs={EPOCHS}", "trainer.verbose=0", "tracking.experiment=faults"]


def start(tmp_path: Path, run_dir: str) -> subprocess.Popen:
    return start_cli("resnet-lab-train", [*ARGS, f"hydra.run.dir={run_dir}"], tmp_path)


def wait_for_epoch(process: subprocess.Popen, state: Path, epoch: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["epochs_done"] >= epoch:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no checkpoint of epoch {epoch} within {timeout} s")


def the_run(tmp_path: Path):
    client, runs = runs_in(tmp_path, "faults")
    assert len(runs) == 1, [r.info.status for r in runs]
    return client, runs[0]


def resume_and_check(tmp_path: Path, run_id: str) -> None:
    result = run_cli("resnet-lab-train", [*ARGS, "trainer.resume=true", "hydra.run.dir=second"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = the_run(tmp_path)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"):
        assert [m.step for m in client.get_metric_history(run_id, key)] == list(range(1, EPOCHS + 1)), key
    assert "test_accuracy" in run.data.metrics


@pytest.mark.slow
def test_ctrl_c_kills_the_run_keeps_the_checkpoint_and_resume_finishes_it(tmp_path, tmp_store):
    process = start(tmp_path, "first")
    state = tmp_path / "first" / "checkpoints" / "state.json"
    wait_for_epoch(process, state, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted: the MLflow run is KILLED and its last checkpoint kept" in stderr
    assert "Traceback" not in stderr
    client, run = the_run(tmp_path)
    assert run.info.status == "KILLED"
    kept = json.loads(state.read_text())
    assert kept["epochs_done"] >= 1 and (state.parent / kept["last"]).is_file()
    resume_and_check(tmp_path, run.info.run_id)


@pytest.mark.slow
def test_a_hard_kill_mid_epoch_resumes_in_the_same_run_with_each_epoch_once(tmp_path, tmp_store):
    process = start(tmp_path, "first")
    wait_for_epoch(process, tmp_path / "first" / "checkpoints" / "state.json", 1)
    process.send_signal(signal.SIGKILL)  # no handler runs: the run stays RUNNING
    process.communicate(timeout=60)
    client, run = the_run(tmp_path)
    assert run.info.status == "RUNNING"
    resume_and_check(tmp_path, run.info.run_id)
