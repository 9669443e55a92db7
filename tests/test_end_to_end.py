"""The README's main job, as a new user runs it: the default training run on the embedded digits."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from test_cli import run_cli


@pytest.mark.slow
def test_the_default_run_reaches_95_percent_on_digits(tmp_path):
    result = run_cli("resnet-lab-train", [], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("resnet-lab").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["preset"] == "cifar_resnet20"
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 30
    assert run.data.metrics["test_accuracy"] >= 0.95
