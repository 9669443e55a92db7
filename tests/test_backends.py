"""Backend portability: under KERAS_BACKEND=jax the package builds, trains and logs without TensorFlow.

Each check runs in a fresh interpreter, since a process picks its Keras backend once, at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import MODEL_PRESETS, REPO, TINY_DATA, TINY_MODEL, TINY_TRAINER


def run_under_jax(script: str, tmp_path: Path) -> dict:
    """Run ``script`` with the JAX backend on the CPU; it prints one JSON line last."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_under_jax_never_imports_tensorflow(tmp_path):
    overrides = TINY_MODEL + TINY_DATA + TINY_TRAINER + [
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "tracking.experiment=tests"]
    out = run_under_jax(f"""
        import json, sys
        import resnet_lab, resnet_lab.cli
        from conftest import compose_config
        from resnet_lab.train import train
        metrics = train(compose_config("train", {overrides!r}))
        import keras
        print(json.dumps({{"backend": keras.backend.backend(), "accuracy": metrics["test_accuracy"],
                          "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")}}))
    """, tmp_path)
    assert out["backend"] == "jax"
    assert 0.0 <= out["accuracy"] <= 1.0
    assert out["tensorflow"] == []

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["keras_backend"] == "jax" and run.data.tags["precision"] in ("fp32", "mixed_bf16")


@pytest.mark.slow
@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_every_preset_builds_and_trains_a_step_under_jax(tmp_path, preset):
    out = run_under_jax(f"""
        import json, sys
        import numpy as np
        import keras
        from omegaconf import OmegaConf
        from conftest import compose_config
        from resnet_lab.model.builder import build_model
        from resnet_lab.runtime import seed_everything

        seed_everything(0)
        x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
        y = np.array([0, 1, 2, 3], dtype="int32")
        spec = OmegaConf.to_object(compose_config("describe", ["model={preset}"]).model)
        model = build_model(spec, (32, 32, 3), 10)
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][-1]
        print(json.dumps({{"loss": loss, "tensorflow": "tensorflow" in sys.modules}}))
    """, tmp_path)
    assert out["loss"] == out["loss"] and out["loss"] > 0  # finite, not NaN
    assert out["tensorflow"] is False
