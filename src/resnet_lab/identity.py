"""What makes two training runs the same run: a hash of the config that shapes the result."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import OmegaConf

# Keys that change where or how a run is reported or resumed, not what it computes.
NOT_IDENTITY = ("tracking", "hydra")
NOT_IDENTITY_TRAINER = ("verbose", "resume")
NOT_IDENTITY_DATA = ("path", "download", "verify_checksum")  # where the same data comes from


def config_hash(cfg: Any) -> str:
    """A short stable hash of the resolved config, leaving out reporting-only keys."""
    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    for key in NOT_IDENTITY:
        tree.pop(key, None)
    for group, ignored in (("trainer", NOT_IDENTITY_TRAINER), ("data", NOT_IDENTITY_DATA)):
        node = tree.get(group)
        if isinstance(node, dict):
            tree[group] = {k: v for k, v in node.items() if k not in ignored}
    text = json.dumps(tree, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
