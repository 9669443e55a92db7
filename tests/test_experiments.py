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


def test_he2015_recipe_in_iterations():
    """The epochs and milestones of the experiment are the paper's 32k/48k/64k iterations at 352 per epoch."""
    from resnet_lab.optim import build_schedule

    cfg = compose_config("train", ["+experiment=he2015_cifar"])
    steps_per_epoch = -(-45000 // cfg.trainer.batch_size)
    assert steps_per_epoch == 352 and cfg.optimizer.weight_decay_mode == "l2" and cfg.optimizer.weight_decay == 1e-4
    schedule = build_schedule(cfg.schedule, cfg.optimizer.learning_rate, steps_per_epoch, cfg.trainer.epochs)
    assert schedule.boundaries == [32000, 48000]
    got = [float(schedule(s)) for s in (31999, 32000, 47999, 48000)]
    assert got == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert 64000 <= cfg.trainer.epochs * steps_per_epoch < 64000 + steps_per_epoch
    assert cfg.data.augment.crop_padding == 4 and cfg.data.augment.flip and cfg.data.val_fraction == 0.1
