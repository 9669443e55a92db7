"""The training loop's promises: early stopping, a diverged loss, resume after an interruption,
deterministic runs and the data-parallel path, each against a real SQLite store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.configs import compose_config
from helpers.stores import runs_in

from resnet_lab.errors import TrainingDiverged
from resnet_lab.train import train
from resnet_lab.training import checkpoints


def runs_of(tmp_path: Path):
    return runs_in(tmp_path, "tests")


def steps(client, run, key="loss"):
    return [m.step for m in client.get_metric_history(run.info.run_id, key)]


def test_early_stopping_ends_the_run_when_the_monitor_stops_improving(tmp_path, tiny_train_overrides):
    # trainer.resume=true with nothing to resume also starts a new run, as here.
    # Nothing learns: no weight moves (rate 1e-12) and the BN statistics that validation uses barely do.
    overrides = tiny_train_overrides + ["trainer.epochs=6", "trainer.early_stopping_patience=1", "trainer.resume=true",
                                        "schedule=constant", "optimizer.learning_rate=1e-12",
                                        "model.bn_momentum=0.999999"]
    metrics = train(compose_config("train", overrides), output_dir=tmp_path)
    assert metrics["epochs_done"] == 2  # epoch 2 is no better: stop
    assert metrics["best_epoch"] == 2  # but as good: on a plateau the later checkpoint is kept
    client, (run,) = runs_of(tmp_path)
    assert run.info.status == "FINISHED" and steps(client, run) == [1, 2]


def test_a_diverging_loss_fails_the_run_with_the_epoch(tmp_path, tiny_train_overrides):
    overrides = tiny_train_overrides + ["optimizer=sgd", "optimizer.learning_rate=1e38", "schedule=constant"]
    with pytest.raises(TrainingDiverged, match=r"the training loss became (nan|inf) at epoch 1 \(batch \d+\)"):
        train(compose_config("train", overrides), output_dir=tmp_path)
    _, (run,) = runs_of(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags["resnet_lab.failed_epoch"] == "1"
    assert "lower optimizer.learning_rate" in run.data.tags["resnet_lab.error"]


def test_resume_continues_the_same_run_and_logs_every_epoch_once(tmp_path, tiny_train_overrides, monkeypatch):
    """Interrupted in the worst place: epoch 2 checkpointed but its metrics not yet logged."""
    overrides = tiny_train_overrides + ["trainer.epochs=3"]
    real_epoch_end = checkpoints.Checkpointer.epoch_end

    def interrupted_after_epoch_2(self, model, epoch, record):
        stop = real_epoch_end(self, model, epoch, record)
        if epoch == 2:
            raise KeyboardInterrupt
        return stop

    monkeypatch.setattr(checkpoints.Checkpointer, "epoch_end", interrupted_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(compose_config("train", overrides), output_dir=tmp_path / "first")
    client, (killed,) = runs_of(tmp_path)
    assert killed.info.status == "KILLED" and steps(client, killed) == [1]
    state = json.loads((tmp_path / "first" / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 2 and len(state["history"]) == 2

    monkeypatch.setattr(checkpoints.Checkpointer, "epoch_end", real_epoch_end)
    metrics = train(compose_config("train", overrides + ["trainer.resume=true"]), output_dir=tmp_path / "second")
    client, (run,) = runs_of(tmp_path)  # still one run
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    for key in ("loss", "val_accuracy", "learning_rate"):
        assert steps(client, run, key) == [1, 2, 3], key
    assert metrics["epochs_done"] == 3
    assert "resnet_lab.error" not in run.data.tags
    # The optimizer's step count came back with the checkpoint: the cosine schedule ends at 0 after
    # 3 epochs x 3 batches; a restarted count would leave the rate near its peak.
    lr = [m.value for m in client.get_metric_history(run.info.run_id, "learning_rate")]
    assert lr[0] > lr[1] > 0 and lr[2] == pytest.approx(0.0, abs=1e-9)


def test_deterministic_runs_with_augmentation_give_identical_metrics(tiny_train_overrides):
    overrides = tiny_train_overrides + ["tracking.enabled=false", "trainer.epochs=1", "trainer.deterministic=true",
                                        "data.augment.crop_padding=2", "data.augment.flip=true",
                                        "data.augment.cutout=3", "trainer.label_smoothing=0.1"]
    first = train(compose_config("train", overrides))
    second = train(compose_config("train", overrides))
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}


def test_the_data_parallel_path_trains_on_one_device_in_mixed_fp16(tiny_train_overrides):
    overrides = tiny_train_overrides + ["tracking.enabled=false", "trainer.epochs=1", "trainer.precision=mixed_fp16",
                                        "trainer.distribution=data_parallel", "optimizer=sgd",
                                        "optimizer.weight_decay=1e-4", "optimizer.weight_decay_mode=l2"]
    metrics = train(compose_config("train", overrides))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
