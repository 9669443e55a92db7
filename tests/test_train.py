"""train(cfg) against a real SQLite MLflow store in tmp_path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers.configs import TINY, TINY_DEPTH, compose_config
from helpers.stores import runs_in, seed_store

from resnet_lab.errors import ConfigError, DataError
from resnet_lab.train import train


def only_run(tmp_path: Path):
    return runs_in(tmp_path, "tests")


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, store_template):
    """One tiny tracked run (2 epochs), read by the tests of what a run logs and of the model it registers."""
    folder = tmp_path_factory.mktemp("tracked-run")
    uri = seed_store(store_template, folder)
    overrides = [*TINY, "trainer.verbose=0", f"tracking.uri={uri}", "tracking.experiment=tests",
                 "trainer.jit_compile=null",  # the automatic choice, as users get it
                 "tracking.register_model=tiny-digits", "tracking.system_metrics=true"]
    metrics = train(compose_config("train", overrides), output_dir=folder, overrides=overrides)
    return folder, metrics


@pytest.mark.xdist_group("tracked_run")  # one worker: the run is made once
def test_a_tiny_run_logs_config_metrics_tags_and_artifacts(tracked_run):
    tmp_path, metrics = tracked_run

    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and "test_accuracy" in metrics
    client, runs = only_run(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"

    params = run.data.params
    assert params["model.name"] == "cifar_resnet20" and params["model.width_multiplier"] == "0.25"
    assert params["model.layer_dims"] == "[1, 1, 1]" and params["model.widths"] == "[16, 32, 64]"
    assert params["trainer.epochs"] == "2" and params["data.name"] == "synthetic"
    assert params["arch.depth"] == str(TINY_DEPTH)  # stem conv + 3 blocks x 2 convs + head
    assert int(params["arch.flops"]) > 0 and int(params["arch.activation_bytes"]) > 0

    tags = run.data.tags
    # Six steps are too few to repay timing the settings: the static choice, Keras' own on a CPU (no XLA).
    assert tags["jit_compile"] == "False" and tags["autotune"] == "static"
    assert "6 training steps are too few to repay a probe" in tags["autotune.reason"]
    assert tags["depth"] == str(TINY_DEPTH) and tags["block"] == "basic" and tags["stem"] == "cifar"
    assert len(tags["resnet_lab.config_hash"]) == 16
    assert int(tags["params_total"]) > 0 and int(tags["flops"]) > 0 and tags["preset"] == "cifar_resnet20"

    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds",
                "epoch_train_seconds"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    whole, steps = (client.get_metric_history(run.info.run_id, key)[1].value
                    for key in ("epoch_seconds", "epoch_train_seconds"))
    assert 0 < steps < whole  # validation and checkpointing are not training time
    lr = [m.value for m in client.get_metric_history(run.info.run_id, "learning_rate")]
    assert lr[1] < lr[0]  # the default cosine schedule decays
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "overrides.txt", "model_summary.txt", "evaluation"} <= artifacts
    evaluation = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert evaluation == {f"evaluation/{name}" for name in ("confusion_matrix.png", "confusion_matrix.csv",
                                                           "per_class_accuracy.csv", "training_curves.png")}
    per_class = Path(client.download_artifacts(run.info.run_id, "evaluation/per_class_accuracy.csv", str(tmp_path)))
    rows = [line.split(",") for line in per_class.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ["class_0", "class_1", "class_2"]
    assert sum(int(r[1]) for r in rows) == 32  # every test image counted once
    assert sum(int(r[2]) for r in rows) / 32 == pytest.approx(metrics["test_accuracy"])
    outcomes = pq.read_table(client.download_artifacts(run.info.run_id, "outcomes/test.parquet", str(tmp_path)))
    assert outcomes.column_names == ["index", "true", "predicted", "correct"] and outcomes.num_rows == 32
    assert outcomes.column("index").to_pylist() == list(range(32))
    assert sum(outcomes.column("correct").to_pylist()) / 32 == pytest.approx(metrics["test_accuracy"])
    assert re.fullmatch(r"synthetic split_seed=0 n=32 [0-9a-f]{12}", tags["resnet_lab.test_split"])
    png = Path(client.download_artifacts(run.info.run_id, "evaluation/confusion_matrix.png", str(tmp_path)))
    assert png.read_bytes()[:4] == b"\x89PNG"
    checkpoints = Path(tags["resnet_lab.checkpoint_dir"])
    assert checkpoints == (tmp_path / "checkpoints").resolve()
    state = json.loads((checkpoints / "state.json").read_text())  # the last epoch's files and the one's before it
    named = {state["last"], state["best"], state["previous"]["last"], state["previous"]["best"], "state.json"}
    assert {p.name for p in checkpoints.iterdir()} == named and state["previous"]["last"] != state["last"]
    (model,) = client.search_logged_models([run.info.experiment_id])  # the network: the run's LoggedModel
    assert {"MLmodel", "model.keras", "input_example.json", "code"} <= {
        a.path for a in client.list_logged_model_artifacts(model.model_id)}
    assert not [key for key in params if key.startswith("model.reference")]  # the preset's facts, not the run's
    inputs = {d.tags[0].value: d.dataset for d in run.data_inputs} if hasattr(run, "data_inputs") else {
        d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["test", "train", "validation"] and {d.name for d in inputs.values()} == {"synthetic"}
    assert json.loads(inputs["test"].profile)["images"] == 32 and json.loads(inputs["train"].profile)["classes"] == 3
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "mlflow.sharedViewState.resnet-lab-comparison" in experiment.tags
    summary = Path(client.download_artifacts(run.info.run_id, "model_summary.txt", str(tmp_path)))
    assert f"depth            {TINY_DEPTH}" in summary.read_text()


def test_a_config_error_creates_no_run(tmp_path, tiny_train_overrides):
    cfg = compose_config("train", tiny_train_overrides + ["model.strides=[1]"])
    with pytest.raises(ConfigError, match="model.strides"):
        train(cfg)
    assert only_run(tmp_path)[1] == []


def test_a_failure_during_the_run_leaves_it_failed_with_the_reason(tmp_path, tiny_train_overrides):
    cfg = compose_config("train", tiny_train_overrides + ["data=cifar10", f"data.path={tmp_path / 'missing'}",
                                                          "data.image_shape=[32,32,3]"])
    with pytest.raises(DataError):
        train(cfg)
    _, runs = only_run(tmp_path)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "no cifar-10-python.tar.gz" in runs[0].data.tags["resnet_lab.error"]


def test_tracking_can_be_turned_off_and_the_same_seed_gives_the_same_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default store would appear
    overrides = [*TINY, "trainer.verbose=0", "tracking.enabled=false", "trainer.epochs=1"]
    first = train(compose_config("train", overrides), output_dir=tmp_path)
    assert "val_accuracy" in first
    assert not (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "model.keras").exists()

    second = train(compose_config("train", overrides), output_dir=tmp_path / "again")
    assert first["loss"] == pytest.approx(second["loss"], rel=1e-5)


def test_throughput_leaves_out_the_compiling_first_epoch():
    from resnet_lab.training.steps import steady_images_per_s

    assert steady_images_per_s([30.0, 2.0, 2.0], images_per_epoch=100) == pytest.approx(50.0)
    assert steady_images_per_s([4.0], images_per_epoch=100) == pytest.approx(25.0)  # one epoch: all there is


@pytest.mark.xdist_group("tracked_run")  # one worker: the run is made once
def test_the_logged_model_loads_through_pyfunc_and_predicts_the_networks_logits(tracked_run):
    import keras
    import mlflow.pyfunc
    import numpy as np
    from mlflow.tracking import MlflowClient

    tmp_path, _ = tracked_run  # registered as tiny-digits, with system metrics
    client, (run,) = only_run(tmp_path)
    uri = client.tracking_uri
    images = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype("float32")
    expected = keras.saving.load_model(tmp_path / "model.keras").predict(images, verbose=0)  # plain Keras

    mlflow.set_tracking_uri(uri)
    try:
        logits = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(images)
        registered = mlflow.pyfunc.load_model("models:/tiny-digits/1").predict(images)
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(registered, expected, rtol=1e-5, atol=1e-5)
    (version,) = MlflowClient(uri).search_model_versions("name='tiny-digits'")
    assert version.run_id == run.info.run_id
    # An MLflow 3 LoggedModel, the run's output, holding the run's final metrics: what the Models page lists.
    (model,) = MlflowClient(uri).search_logged_models([run.info.experiment_id])
    assert model.status == "READY" and model.source_run_id == run.info.run_id and model.name == "model"
    assert [o.model_id for o in MlflowClient(uri).get_run(run.info.run_id).outputs.model_outputs] == [model.model_id]
    linked = {m.key: m.value for m in model.metrics}
    assert linked["test_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"])
    assert linked["best_val_accuracy"] == pytest.approx(run.data.metrics["best_val_accuracy"])
    assert model.params["model.name"] == "cifar_resnet20" and model.params["arch.depth"] == str(TINY_DEPTH)
    assert version.source == model.artifact_location  # the registry holds the LoggedModel, not a copy
    assert "system/cpu_utilization_percentage" in run.data.metrics  # tracking.system_metrics=true
