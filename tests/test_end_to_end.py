"""The README's main job, as a new user runs it: the default training run on the embedded digits."""

from __future__ import annotations

import pytest
from helpers.processes import run_cli
from helpers.stores import runs_in


@pytest.mark.slow
@pytest.mark.accuracy
def test_the_default_run_reaches_95_percent_on_digits(tmp_path):
    result = run_cli("resnet-lab-train", [], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, (run,) = runs_in(tmp_path, "resnet-lab")
    assert run.info.status == "FINISHED"
    assert run.data.tags["preset"] == "cifar_resnet20"
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 30
    assert run.data.metrics["test_accuracy"] >= 0.95
