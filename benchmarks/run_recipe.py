"""The run's own recipe, for the benchmarks that build and time a model in their own process: the train config
composed as ``resnet-lab-train`` composes it, its data loaded, and the ``training.build.Recipe`` a run builds by."""

from __future__ import annotations

import math
from typing import Any, Sequence, Tuple


def run_recipe(overrides: Sequence[str]) -> Tuple[Any, Any, Any]:
    """The config, the data splits and the recipe of a run with ``overrides`` (on the default data unless they
    say otherwise)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from resnet_lab.config.schema import register_configs
    from resnet_lab.data import load_splits
    from resnet_lab.training.build import Recipe
    from resnet_lab.zoo import config_dir

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    splits = load_splits(cfg.data)
    steps = math.ceil(len(splits.y_train) / cfg.trainer.batch_size)
    recipe = Recipe.of(cfg, OmegaConf.to_object(cfg.model), splits.image_shape, splits.num_classes, steps,
                       splits=splits)
    return cfg, splits, recipe
