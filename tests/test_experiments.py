"""Every experiment in experiments/ composes with the training config and passes validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, compose_config
from resnet_lab.validation import validate_train_config

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = compose_config("train", [f"+experiment={name}"])
    validate_train_config(cfg)


def test_experiments_change_what_they_say():
    cfg = compose_config("train", ["+experiment=digits_depth", "model=cifar_resnet32"])
    assert cfg.tracking.experiment == "digits-depth" and cfg.model.name == "cifar_resnet32"
