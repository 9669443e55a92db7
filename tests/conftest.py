"""Shared fixtures: compose the real configs, shrink runs to seconds, point MLflow at tmp_path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from resnet_lab.cli import CONFIG_DIR, EXPERIMENTS_DIR
from resnet_lab.config import register_configs

REPO = Path(__file__).resolve().parent.parent
MODEL_PRESETS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))

# A network and data set small enough to train in seconds on two cores.
TINY_MODEL = [
    "model=cifar_resnet20",
    "model.stem.width=4",
    "model.widths=[4,8]",
    "model.layer_dims=[1,1]",
    "model.strides=[1,2]",
]
TINY_DATA = [
    "data=synthetic",
    "data.image_shape=[8,8,1]",
    "data.num_classes=3",
    "data.train_size=96",
    "data.val_size=32",
    "data.test_size=32",
]
TINY_TRAINER = ["trainer.epochs=2", "trainer.batch_size=32", "trainer.verbose=0"]


def compose_config(config_name: str, overrides: Sequence[str] = ()):
    """Compose ``conf/<config_name>.yaml`` with overrides, exactly as the CLI does."""
    register_configs(EXPERIMENTS_DIR)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def tracking_overrides(tmp_path: Path) -> List[str]:
    return [f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "tracking.experiment=tests"]


@pytest.fixture
def tiny_train_overrides(tmp_path: Path) -> List[str]:
    return TINY_MODEL + TINY_DATA + TINY_TRAINER + tracking_overrides(tmp_path)
