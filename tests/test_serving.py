"""A sweep's champion served from a fresh environment, as someone else picks it up.

A real sweep on digits registers its best run as ``models:/<experiment>@champion``; ``mlflow models serve``
then builds the model's environment from PyPI with MLflow's default environment manager (virtualenv, with
pyenv's Python) and with uv, neither of which has resnet-lab installed: the model carries the project's
code. Raw test images, as scikit-learn ships them, go over HTTP and must come back with the classes the run
scored, at the run's test accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers.browser import serving
from helpers.configs import compose_config
from helpers.processes import BIN, _env, run_cli
from helpers.stores import closed_port, seed_store

EXPERIMENT = "served"
CHAMPION = f"models:/{EXPERIMENT}@champion"
pytestmark = [pytest.mark.slow, pytest.mark.serving, pytest.mark.xdist_group("served")]  # one sweep, one worker


@pytest.fixture(scope="module")
def champion(tmp_path_factory, store_template):
    """A one-job sweep of the default digits run, shortened: its run is the champion."""
    folder = tmp_path_factory.mktemp("served")
    uri = seed_store(store_template, folder)
    result = run_cli("resnet-lab-train", ["-m", "trainer.epochs=8", "trainer.verbose=0",
                                          f"tracking.experiment={EXPERIMENT}"], folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"champion: version 1 of '{EXPERIMENT}'" in result.stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    version = client.get_model_version_by_alias(EXPERIMENT, "champion")
    run = client.get_run(version.run_id)
    outcomes = pq.read_table(client.download_artifacts(run.info.run_id, "outcomes/test.parquet", str(folder)))
    return folder, uri, run, outcomes.to_pandas()


def raw_test_split():
    """The digits test split as the run split it, in scikit-learn's own values (0..16)."""
    from resnet_lab.data import load_splits

    splits = load_splits(compose_config("train", []).data)
    return splits.x_test, splits.y_test


def invoke(url: str, images: np.ndarray) -> tuple:
    """POST images to the scoring server as JSON (``{"inputs": ...}``); returns (HTTP status, decoded body)."""
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": images.tolist()}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.parametrize("env_manager", ["virtualenv", "uv"])
def test_the_champion_served_from_a_fresh_environment_classifies_raw_images(champion, env_manager, tmp_path):
    folder, uri, run, outcomes = champion
    images, labels = raw_test_split()
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    if env_manager == "virtualenv" and shutil.which("pyenv") is None:
        message = "MLflow's virtualenv manager takes the model's Python from pyenv, which is not on PATH"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    env = _env({"MLFLOW_TRACKING_URI": uri, "MLFLOW_ENV_ROOT": str(tmp_path / "envs"),  # nothing reused
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})  # uv and virtualenv come with the test extra
    command = [str(BIN / "mlflow"), "models", "serve", "-m", CHAMPION, "--env-manager", env_manager,
               "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, folder, url, tmp_path / "serve.log", timeout=900, env=env, health="/ping"):
        status, answer = invoke(url, images)
        wrong_status, wrong = invoke(url, images[:2, :4])  # half the image: the signature refuses it
        float_status, as_floats = invoke(url, images[:8].astype("float64") + 0.0)

    assert status == 200, answer
    predicted = np.asarray(answer["predictions"]).argmax(axis=-1)
    np.testing.assert_array_equal(predicted, outcomes["predicted"].to_numpy())  # what the run scored
    assert np.mean(predicted == labels) == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
    assert float_status == 200 and np.asarray(as_floats["predictions"]).argmax(-1).tolist() == predicted[:8].tolist()
    assert wrong_status == 400 and "shape" in json.dumps(wrong).lower()  # MLflow's schema error, not Keras'


def test_mlflow_models_predict_with_uv_answers_a_file_of_raw_images(champion, tmp_path):
    """``mlflow models predict`` builds a throwaway environment each time, with its own Python: uv finds the
    machine's; virtualenv would have pyenv compile one from python.org (README: Deploy a model)."""
    folder, uri, run, outcomes = champion
    images, _ = raw_test_split()
    (tmp_path / "images.json").write_text(json.dumps({"inputs": images[:20].tolist()}))
    env = _env({"MLFLOW_TRACKING_URI": uri, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    predict = subprocess.run([str(BIN / "mlflow"), "models", "predict", "-m", CHAMPION, "-i", "images.json",
                              "-t", "json", "-o", "predicted.json", "--env-manager", "uv"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert predict.returncode == 0, predict.stderr[-3000:]
    answer = json.loads((tmp_path / "predicted.json").read_text())["predictions"]
    assert np.asarray(answer).argmax(-1).tolist() == outcomes["predicted"].to_list()[:20]
