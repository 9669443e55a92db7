"""What makes two training runs the same run: a hash of the config that shapes the result."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import OmegaConf

# Keys that change where or how a run is reported or resumed, not what it computes.
NOT_IDENTITY = ("tracking", "hydra")
NOT_IDENTITY_TRAINER = ("verbose", "resume")


def config_hash(cfg: Any) -> str:
    """A short stable hash of the resolved config, leaving out reporting-only keys."""
    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    for key in NOT_IDENTITY:
        tree.pop(key, None)
    trainer = tree.get("trainer")
    if isinstance(trainer, dict):
        tree["trainer"] = {k: v for k, v in trainer.items() if k not in NOT_IDENTITY_TRAINER}
    text = json.dumps(tree, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
