"""The logged model stands on its own: a fresh process that knows only the run's id scores the digits
test split as scikit-learn ships it (0..16, no scaling) and gets the run's test accuracy; JSON sent to
the scoring server is read as the signature says; images of the wrong shape get MLflow's schema error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow.artifacts
import numpy as np
import pytest
from helpers.configs import compose_config
from helpers.stores import runs_in
from omegaconf import OmegaConf

from resnet_lab.train import train

# debug=tiny's model and schedule on the real digits: 1,257 training images, 360 to test.
DIGITS = ["debug=tiny", "data=digits", "data.image_shape=[8,8,1]", "data.num_classes=10", "trainer.epochs=3"]

SCORE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import mlflow, mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server
    from omegaconf import OmegaConf

    uri, run_id, data_yaml = sys.argv[1:]
    assert "resnet_lab" not in sys.modules and "keras" not in sys.modules  # nothing of the run is loaded
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")

    # The test split exactly as the run split it, through the project's loader: raw 0..16 values.
    from resnet_lab.data import load_splits
    splits = load_splits(OmegaConf.create(data_yaml))
    logits = model.predict(splits.x_test.astype("float32"))
    correct = int((np.asarray(logits).argmax(axis=-1) == splits.y_test).sum())

    # The served path: JSON numbers (the issue's four digits, whole numbers 0..16) cast by the signature.
    schema = model.metadata.get_input_schema()
    four = splits.x_test[:4]
    served = scoring_server.invocations(json.dumps({"inputs": four.tolist()}), "application/json", model, schema)
    served_classes = np.asarray(json.loads(served.response)["predictions"]).argmax(axis=-1).tolist()
    try:
        scoring_server.invocations(json.dumps({"inputs": np.zeros((2, 9, 9, 1)).tolist()}), "application/json",
                                   model, schema)
        wrong_shape = "accepted"
    except MlflowException as exc:
        wrong_shape = exc.message
    spec = schema.inputs[0]
    print(json.dumps({"correct": correct, "n": len(splits.y_test), "max": float(splits.x_test.max()),
                      "status": served.status, "served": served_classes,
                      "direct": np.asarray(logits[:4]).argmax(axis=-1).tolist(), "wrong_shape": wrong_shape,
                      "dtype": str(spec.type), "shape": list(spec.shape)}))
""")


@pytest.mark.slow  # end to end: a training run, then a fresh interpreter loads and scores its model
def test_a_fresh_process_scores_the_raw_test_split_at_the_runs_test_accuracy(tmp_path, tiny_train_overrides):
    cfg = compose_config("train", [*tiny_train_overrides, *DIGITS])
    metrics = train(cfg, output_dir=tmp_path / "out")
    client, (run,) = runs_in(tmp_path, "tests")
    (model,) = client.search_logged_models([run.info.experiment_id])  # the run's LoggedModel holds the example
    folder = mlflow.artifacts.download_artifacts(artifact_uri=f"{model.artifact_location}/input_example.json",
                                                 dst_path=str(tmp_path))
    example = json.loads(Path(folder).read_text())
    example = np.asarray(example["inputs"] if isinstance(example, dict) else example)
    assert example.shape == (2, 8, 8, 1) and example.max() > 1.0  # raw digits (0..16), not scaled to 0..1

    result = subprocess.run([sys.executable, "-c", SCORE, client.tracking_uri, run.info.run_id,
                             OmegaConf.to_yaml(cfg.data)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads(result.stdout.strip().splitlines()[-1])

    assert scored["n"] == 360 and scored["max"] == 16.0
    assert scored["correct"] > 0.25 * scored["n"]  # well above chance (about 0.58): a wrong input scale would show
    assert scored["correct"] == round(metrics["test_accuracy"] * scored["n"])
    assert abs(scored["correct"] / scored["n"] - run.data.metrics["test_accuracy"]) < 1e-6
    assert scored["dtype"] == "float32" and scored["shape"] == [-1, 8, 8, 1]
    assert scored["status"] == 200 and scored["served"] == scored["direct"]
    assert "Shape of input (2, 9, 9, 1) does not match expected shape (-1, 8, 8, 1)" in scored["wrong_shape"]


def test_a_model_logged_before_raw_inputs_keeps_taking_what_it_took(tmp_path):
    """A model.keras saved before networks normalized their input has no input_normalize layer: it loads as
    it did and the pyfunc wrapper passes values through untouched, so it still takes standardized images
    (and says so through ``expected_input``); nothing guesses statistics it never had."""
    import keras

    from resnet_lab.model.inputs import expected_input
    from resnet_lab.tracking.model_logging import KerasNetwork

    inputs = keras.Input((8, 8, 1), name="image")
    old = keras.Model(inputs, keras.layers.Dense(3, name="head_logits")(keras.layers.Flatten()(inputs)))
    old.save(tmp_path / "model.keras")
    loaded = KerasNetwork(str(tmp_path / "model.keras"))
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x), old.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    assert expected_input(loaded.network).startswith("preprocessed images")
