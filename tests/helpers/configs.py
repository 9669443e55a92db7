"""Compose the real configs exactly as the commands do, and the overrides that shrink a run to seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from resnet_lab.config.paths import CONFIG_DIR, EXPERIMENTS_DIR
from resnet_lab.config.schema import register_configs

REPO = Path(__file__).resolve().parents[2]
MODEL_PRESETS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))

# The debug config users smoke-test with: cifar_resnet20 with one block per stage at a quarter of its
# width (stem 4, stages 4/8/16, depth 8) on 96 synthetic 8x8x3 images of 3 classes, two epochs.
TINY = ["debug=tiny"]
TINY_DEPTH = 8  # stem conv + 3 blocks x 2 convs + classifier


def compose_config(config_name: str, overrides: Sequence[str] = (), hydra: bool = False) -> Any:
    """``conf/<config_name>.yaml`` with overrides; ``hydra=True`` keeps the ``hydra`` node (sweeper, launcher)."""
    register_configs(EXPERIMENTS_DIR)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=hydra)


def model_spec(*overrides: str) -> Any:
    """The typed model spec (``ModelConfig``) the builder takes, composed as ``resnet-lab-describe`` does."""
    return OmegaConf.to_object(compose_config("describe", list(overrides)).model)
