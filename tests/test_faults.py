"""Faults during a real `resnet-lab-train` process: Ctrl-C (SIGINT) and a hard kill (SIGKILL) mid-run, a
damaged checkpoint, a full disk (a tmpfs filled for real, with the store elsewhere or on it), then
`trainer.resume=true`: the same MLflow run finishes with every epoch's metrics, redone epochs tagged."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.configs import TINY
from helpers.disks import fill, small_disk
from helpers.processes import run_cli, start_cli
from helpers.stores import runs_in, seed_store

EPOCHS = 4
# Enough images that an epoch lasts seconds even on a fast machine, so the signal lands inside the run.
ARGS = [*TINY, "data.train_size=8192", f"trainer.epochs={EPOCHS}", "trainer.verbose=0", "tracking.experiment=faults"]


def start(tmp_path: Path, run_dir: str, *more: str) -> subprocess.Popen:
    return start_cli("resnet-lab-train", [*ARGS, f"hydra.run.dir={run_dir}", *more], tmp_path)


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


def resume_and_check(tmp_path: Path, run_id: str, *more: str, store: Path = None) -> subprocess.CompletedProcess:
    """Resume; the same run FINISHES with each epoch's metrics once, and twice for each epoch tagged as redone."""
    result = run_cli("resnet-lab-train", [*ARGS, "trainer.resume=true", "hydra.run.dir=second", *more], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = the_run(store or tmp_path)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    redone = [int(e) for e in run.data.tags.get("resnet_lab.redone_epochs", "").split(",") if e]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"):
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == sorted([*range(1, EPOCHS + 1), *redone]), key
    assert "test_accuracy" in run.data.metrics
    return result


def killed_after(tmp_path: Path, epoch: int) -> Path:
    """A run killed hard (SIGKILL) once ``epoch`` is checkpointed and logged (an epoch is checkpointed first,
    so a kill between the two is a different case); returns its checkpoint folder."""
    process = start(tmp_path, "first")
    folder = tmp_path / "first" / "checkpoints"
    wait_for_epoch(process, folder / "state.json", epoch)
    wait_until_logged(process, tmp_path, epoch)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return folder


def wait_until_logged(process: subprocess.Popen, store: Path, epoch: int, timeout: float = 300) -> None:
    """Wait until ``epoch``'s metrics are in the store, so that what fails next is a write of the epoch after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client, runs = runs_in(store, "faults")
        if runs and len(client.get_metric_history(runs[0].info.run_id, "loss")) >= epoch:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"epoch {epoch} was not logged within {timeout} s")


def the_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), stderr[-3000:]  # the last thing said
    return lines[0]


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


@pytest.mark.slow
def test_damaged_checkpoints_after_a_hard_kill_refuse_then_fall_back_and_tag_the_redone_epochs(tmp_path, tmp_store):
    folder = killed_after(tmp_path, 2)
    state = json.loads((folder / "state.json").read_text())
    client, run = the_run(tmp_path)
    logged = {m.step for m in client.get_metric_history(run.info.run_id, "loss")}
    assert state["epochs_done"] in logged, (state["epochs_done"], logged)  # the epoch redone below was logged
    newest, before = folder / state["last"], folder / state["previous"]["last"]
    good_copy = before.read_bytes()
    newest.write_bytes(newest.read_bytes()[:1000])  # a bad copy, or a failing disk
    flipped = bytearray(good_copy)
    flipped[len(flipped) // 2] ^= 0x10
    before.write_bytes(bytes(flipped))

    # Neither checkpoint is good: one line, and the run is left as the kill left it.
    refused = run_cli("resnet-lab-train", [*ARGS, "trainer.resume=true", "hydra.run.dir=second"], tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert the_error_line(refused.stderr) == (
        f"error: no good checkpoint to resume from: {newest} has 1,000 bytes where "
        f"{state['files'][state['last']]['bytes']:,} were written; the one before it: {before} has another SHA-256 "
        f"than the one recorded: it changed after it was written. Start the run anew with trainer.resume=false")
    _, run = the_run(tmp_path)
    assert run.info.status == "RUNNING" and "resnet_lab.error" not in run.data.tags

    # The epoch before is good again: resume falls back to it, says so in one line, and tags what it redoes.
    before.write_bytes(good_copy)
    result = resume_and_check(tmp_path, run.info.run_id)
    done = state["epochs_done"]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "checkpoint damaged" in line]
    assert len(lines) == 1 and lines[0].endswith(
        f"checkpoint damaged: {newest} has 1,000 bytes where {state['files'][state['last']]['bytes']:,} were "
        f"written; resuming from epoch {done - 1}, the newest good checkpoint: epoch {done} is trained again"), lines
    _, run = the_run(tmp_path)
    assert run.data.tags["resnet_lab.redone_epochs"] == str(done)  # it had been logged before the kill


@pytest.mark.slow
def test_a_full_disk_is_one_line_fails_the_run_and_resume_continues_once_space_is_freed(tmp_path, tmp_store):
    with small_disk(tmp_path / "disk", 16 << 20) as disk:
        process = start(tmp_path, str(disk / "first"))
        wait_until_logged(process, tmp_path, 1)
        filler = fill(disk)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, stderr[-3000:]
        client, run = the_run(tmp_path)
        folder = disk / "first" / "checkpoints"
        kept = json.loads((folder / "state.json").read_text())["epochs_done"]
        line = the_error_line(stderr)
        assert line.startswith(f"error: no space left in {folder}: writing ") and " bytes are free; " in line
        assert line.endswith(f"the checkpoint of epoch {kept} is kept; MLflow run {run.info.run_id} is FAILED: "
                             f"free some space, then rerun with trainer.resume=true to continue it"), line
        assert run.info.status == "FAILED" and run.data.tags["resnet_lab.error"].startswith("DiskFull: no space")
        traceback = Path(client.download_artifacts(run.info.run_id, "error/traceback.txt", str(tmp_path)))
        assert "No space left on device" in traceback.read_text()

        filler.unlink()
        resume_and_check(tmp_path, run.info.run_id)


@pytest.mark.slow
def test_a_full_disk_that_also_holds_the_store_leaves_the_run_to_be_resumed(tmp_path, store_template):
    with small_disk(tmp_path / "disk", 16 << 20) as disk:
        seed_store(store_template, disk)
        store = [f"tracking.uri={disk / 'mlflow.db'}"]
        process = start(tmp_path, str(disk / "first"), *store)
        wait_until_logged(process, disk, 1)
        filler = fill(disk)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, stderr[-3000:]
        _, run = the_run(disk)
        line = the_error_line(stderr)
        assert line.startswith(f"error: no space left in {disk}"), line
        assert line.endswith(f"the MLflow store {disk / 'mlflow.db'} is on a full disk too (0 bytes free) and could "
                             f"not record the run's end, so MLflow run {run.info.run_id} still shows RUNNING: free "
                             f"some space, then rerun with trainer.resume=true to continue it"), line
        assert run.info.status == "RUNNING"

        filler.unlink()
        resume_and_check(tmp_path, run.info.run_id, *store, store=disk)
