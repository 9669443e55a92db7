"""Checkpoints that verify themselves: checksums in state.json, a fall-back to the previous epoch when the
newest file is damaged, a refusal that leaves the run as it was when none is good, and a full disk that
keeps the last good checkpoint. Each fault is made for real (bytes cut or flipped, a tmpfs filled)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
from helpers.configs import compose_config
from helpers.disks import PAGE, fill, small_disk
from helpers.stores import runs_in

from resnet_lab.errors import CheckpointDamaged, DiskFull
from resnet_lab.train import train
from resnet_lab.training import checkpoints

EPOCHS = 4


def overrides(base, epochs=EPOCHS):
    return base + [f"trainer.epochs={epochs}"]


def interrupted_run(tmp_path: Path, base, monkeypatch, after: int) -> Path:
    """A run stopped (Ctrl-C) at the end of epoch ``after + 1``, before checkpointing it: epochs 1 to ``after``
    are checkpointed and logged; returns its checkpoint folder."""
    real_epoch_end = checkpoints.Checkpointer.epoch_end

    def interrupted(self, model, epoch, record):
        if epoch == after + 1:
            raise KeyboardInterrupt
        return real_epoch_end(self, model, epoch, record)

    monkeypatch.setattr(checkpoints.Checkpointer, "epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(compose_config("train", overrides(base)), output_dir=tmp_path / "first")
    monkeypatch.setattr(checkpoints.Checkpointer, "epoch_end", real_epoch_end)
    return tmp_path / "first" / "checkpoints"


def the_run(tmp_path: Path):
    client, (run,) = runs_in(tmp_path, "tests")
    return client, run


def steps(client, run, key="loss"):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def state_of(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


def test_the_state_records_each_files_checksum_and_keeps_the_previous_epoch(tmp_path, tiny_train_overrides):
    train(compose_config("train", overrides(tiny_train_overrides, 3)), output_dir=tmp_path)
    folder = tmp_path / "checkpoints"
    state = state_of(folder)
    assert set(state["files"]) == {state["last"], state["best"]}
    for name, record in state["files"].items():
        data = (folder / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, name
    previous = state["previous"]
    assert previous["epochs_done"] == 2 and previous["last"] == "epoch-0002.npz" and len(previous["history"]) == 2
    named = {state["last"], state["best"], previous["last"], previous["best"], "state.json"}
    assert {p.name for p in folder.iterdir()} == named  # nothing else is kept
    assert checkpoints.resume_point(folder).state.epochs_done == 3


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_newest_checkpoint_resumes_from_the_previous_epoch_and_tags_the_redone_one(
        tmp_path, tiny_train_overrides, monkeypatch, caplog, damage):
    folder = interrupted_run(tmp_path, tiny_train_overrides, monkeypatch, after=3)
    newest = folder / "epoch-0003.npz"
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        flip_a_bit(newest)
    with caplog.at_level(logging.WARNING, logger="resnet_lab"):
        metrics = train(compose_config("train", overrides(tiny_train_overrides) + ["trainer.resume=true"]),
                        output_dir=tmp_path / "second")
    why = "bytes where" if damage == "truncated" else "another SHA-256 than the one recorded"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("checkpoint damaged")]
    assert len(lines) == 1 and str(newest) in lines[0] and why in lines[0], lines
    assert "resuming from epoch 2, the newest good checkpoint: epoch 3 is trained again" in lines[0]
    client, run = the_run(tmp_path)
    assert run.info.status == "FINISHED" and metrics["epochs_done"] == EPOCHS
    assert run.data.tags["resnet_lab.redone_epochs"] == "3"
    for key in ("loss", "val_accuracy"):  # every epoch, the redone one with both of its values
        assert steps(client, run, key) == [1, 2, 3, 3, 4], key


def test_no_good_checkpoint_is_one_error_and_leaves_the_run_as_it_was(tmp_path, tiny_train_overrides, monkeypatch):
    folder = interrupted_run(tmp_path, tiny_train_overrides, monkeypatch, after=3)
    flip_a_bit(folder / "epoch-0003.npz")
    (folder / "epoch-0002.npz").write_bytes(b"")
    _, before = the_run(tmp_path)
    with pytest.raises(CheckpointDamaged, match=r"no good checkpoint to resume from: .*epoch-0003.npz has another "
                                                r"SHA-256.*; the one before it: .*epoch-0002.npz has 0 bytes where"):
        train(compose_config("train", overrides(tiny_train_overrides) + ["trainer.resume=true"]),
              output_dir=tmp_path / "second")
    client, after = the_run(tmp_path)
    assert (after.info.status, after.info.end_time) == ("KILLED", before.info.end_time)
    assert after.data.tags == before.data.tags and steps(client, after) == [1, 2, 3]


@pytest.mark.parametrize("damage", ["bit-flipped", "not JSON"])
def test_a_damaged_state_file_is_refused_and_leaves_the_run_as_it_was(tmp_path, tiny_train_overrides, monkeypatch,
                                                                     damage):
    folder = interrupted_run(tmp_path, tiny_train_overrides, monkeypatch, after=2)
    state = folder / "state.json"
    if damage == "not JSON":
        state.write_bytes(state.read_bytes()[:100])
        why = "it is not a checkpoint state"
    else:  # a digit of a metric changes: still JSON, but not what was written
        text = state.read_text()
        state.write_text(text.replace('"epochs_done": 2', '"epochs_done": 3'))
        why = "its checksum differs from the one recorded"
    with pytest.raises(CheckpointDamaged, match=f"the checkpoint state {state} is damaged: {why}.*resume=false"):
        train(compose_config("train", overrides(tiny_train_overrides) + ["trainer.resume=true"]),
              output_dir=tmp_path / "second")
    _, run = the_run(tmp_path)
    assert run.info.status == "KILLED"


def test_a_full_disk_keeps_the_last_good_checkpoint_and_resume_continues(tmp_path, tiny_train_overrides, caplog):
    # The sizes of one epoch's files, from a run elsewhere; the disk then holds epoch 1 and half of a checkpoint.
    train(compose_config("train", overrides(tiny_train_overrides, 1) + ["tracking.enabled=false"]),
          output_dir=tmp_path / "measure")
    files = state_of(tmp_path / "measure" / "checkpoints")["files"].values()
    pages = [-(-f["bytes"] // PAGE) * PAGE for f in files]
    room = sum(pages) + 2 * PAGE + max(pages) // 2 // PAGE * PAGE  # epoch 1, its state, half of one more file
    with small_disk(tmp_path / "disk", 1 << 22) as disk:
        filler = fill(disk, leave=room)
        with caplog.at_level(logging.WARNING, logger="resnet_lab"):
            with pytest.raises(DiskFull) as failed:
                train(compose_config("train", overrides(tiny_train_overrides, 3)), output_dir=disk / "run")
        folder = disk / "run" / "checkpoints"
        line = str(failed.value)
        assert line.startswith(f"no space left in {folder}: writing ")
        assert f"needed {failed.value.needed:,} bytes and {shutil.disk_usage(folder).free:,} bytes are free" in line
        assert "the checkpoint of epoch 1 is kept" in line and "is FAILED" in line and "trainer.resume=true" in line
        assert any("bytes are free in" in r.getMessage() and "one epoch's checkpoints need" in r.getMessage()
                   for r in caplog.records)  # the warning before training
        client, run = the_run(tmp_path)
        assert run.info.status == "FAILED" and run.data.tags["resnet_lab.error"].startswith("DiskFull: no space left")
        traceback = client.download_artifacts(run.info.run_id, "error/traceback.txt", str(tmp_path))
        assert "OSError: [Errno 28] No space left on device" in Path(traceback).read_text()
        assert checkpoints.resume_point(folder).state.epochs_done == 1  # whole, checksums and all
        assert not (folder / "epoch-0002.npz").exists() and not (folder / "state.json.tmp").exists()

        filler.unlink()  # space is freed
        metrics = train(compose_config("train", overrides(tiny_train_overrides, 3) + ["trainer.resume=true"]),
                        output_dir=tmp_path / "second")
        client, run = the_run(tmp_path)
        assert run.info.status == "FINISHED" and metrics["epochs_done"] == 3
        assert steps(client, run) == [1, 2, 3] and "resnet_lab.error" not in run.data.tags
