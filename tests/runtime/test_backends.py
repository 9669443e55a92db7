"""Backend portability: under KERAS_BACKEND=jax the package builds, trains and logs without TensorFlow.

Each check runs in a fresh interpreter, since a process picks its Keras backend once, at import; both
compile under JAX from scratch (tens of seconds), so they run in the slow suite.
"""

from __future__ import annotations

import pytest
from helpers.configs import MODEL_PRESETS, TINY
from helpers.processes import run_python
from mlflow.tracking import MlflowClient

JAX_ON_CPU = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


@pytest.mark.slow
@pytest.mark.jax
def test_training_under_jax_never_imports_tensorflow(tmp_path, tmp_store):
    overrides = [*TINY, "trainer.verbose=0", f"tracking.uri={tmp_store}", "tracking.experiment=tests"]
    out = run_python(f"""
        import json, sys
        import resnet_lab, resnet_lab.cli
        from helpers.configs import compose_config
        from resnet_lab.train import train
        metrics = train(compose_config("train", {overrides!r}))
        import keras
        print(json.dumps({{"backend": keras.backend.backend(), "accuracy": metrics["test_accuracy"],
                          "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")}}))
    """, tmp_path, JAX_ON_CPU)
    assert out["backend"] == "jax"
    assert 0.0 <= out["accuracy"] <= 1.0
    assert out["tensorflow"] == []

    client = MlflowClient(tmp_store)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["keras_backend"] == "jax" and run.data.tags["precision"] in ("fp32", "mixed_bf16")


@pytest.mark.slow
@pytest.mark.jax
def test_every_preset_builds_and_trains_a_step_under_jax(tmp_path):
    """One interpreter for all presets: each keeps its stem, blocks and options, at two blocks per stage
    (every kind of layer, a fraction of the compile time) and a quarter of its width."""
    out = run_python(f"""
        import json, sys
        import numpy as np
        import keras
        from helpers.configs import model_spec
        from resnet_lab.model.builder import build_model
        from resnet_lab.runtime.backend import seed_everything

        seed_everything(0)
        x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
        y = np.array([0, 1, 2, 3], dtype="int32")
        losses = {{}}
        for preset in {MODEL_PRESETS!r}:
            spec = model_spec(f"model={{preset}}")
            spec.width_multiplier = 0.25
            spec.layer_dims = [min(blocks, 2) for blocks in spec.layer_dims]
            model = build_model(spec, (32, 32, 3), 10)
            model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            losses[preset] = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][-1]
        print(json.dumps({{"losses": losses, "tensorflow": "tensorflow" in sys.modules}}))
    """, tmp_path, JAX_ON_CPU, timeout=1500)
    assert sorted(out["losses"]) == MODEL_PRESETS
    not_finite = {p: loss for p, loss in out["losses"].items() if not (loss == loss and 0 < loss < float("inf"))}
    assert not not_finite
    assert out["tensorflow"] is False
