"""Every experiment in experiments/ composes with the training config and passes validation."""

from __future__ import annotations

import pytest
from helpers.configs import EXPERIMENTS, compose_config

from resnet_lab.config.validation import validate_train_config


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = compose_config("train", [f"experiment={name}"])
    validate_train_config(cfg)


def test_experiments_change_what_they_say():
    cfg = compose_config("train", ["experiment=digits_depth", "model=cifar_resnet32"])
    assert cfg.tracking.experiment == "digits-depth" and cfg.model.name == "cifar_resnet32"


def test_he2015_recipe_in_iterations():
    """The epochs and milestones of the experiment are the paper's 32k/48k/64k iterations at 352 per epoch."""
    from resnet_lab.training.optim import build_schedule

    cfg = compose_config("train", ["experiment=he2015_cifar"])
    steps_per_epoch = -(-45000 // cfg.trainer.batch_size)
    assert steps_per_epoch == 352 and cfg.optimizer.weight_decay_mode == "l2" and cfg.optimizer.weight_decay == 1e-4
    schedule = build_schedule(cfg.schedule, cfg.optimizer.learning_rate, steps_per_epoch, cfg.trainer.epochs)
    assert schedule.boundaries == [32000, 48000]
    got = [float(schedule(s)) for s in (31999, 32000, 47999, 48000)]
    assert got == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert 64000 <= cfg.trainer.epochs * steps_per_epoch < 64000 + steps_per_epoch
    assert cfg.data.augment.crop_padding == 4 and cfg.data.augment.flip and cfg.data.val_fraction == 0.1


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_debug_tiny_shrinks_every_experiment_to_a_smoke_run(name):
    """debug=tiny comes after the experiment, so its data and trainer win; the experiment's identity stays."""
    full, tiny = (compose_config("train", [f"experiment={name}", *extra]) for extra in ([], ["debug=tiny"]))
    validate_train_config(tiny)
    assert tiny.tracking.experiment == full.tracking.experiment and tiny.model.name == full.model.name
    assert tiny.data.name == "synthetic" and list(tiny.data.image_shape) == [8, 8, 3]
    assert tiny.trainer.epochs == 2 and tiny.trainer.jit_compile is False
    assert list(tiny.model.layer_dims) == [1] * len(full.model.widths) and tiny.model.width_multiplier == 0.25
    assert tiny.model.block.type == full.model.block.type and tiny.model.stem.name == full.model.stem.name


def test_the_command_line_takes_experiment_with_or_without_a_plus():
    from resnet_lab.cli import _experiment_without_plus

    assert _experiment_without_plus(["-m", "+experiment=cifar_depth", "debug=tiny", "+trainer.x=1"]) == \
        ["-m", "experiment=cifar_depth", "debug=tiny", "+trainer.x=1"]
