"""What makes two training runs the same run: a hash of the config that shapes the result.

``config_hash`` names one run (``trainer.resume`` and ``tracking.skip_finished`` find earlier runs by it);
``group_hash`` leaves the seed out as well, so repeats of one configuration share it and are compared
as a group.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict

from omegaconf import OmegaConf

# Keys that change where or how a run is reported or resumed, not what it computes.
NOT_IDENTITY = ("tracking", "hydra")
# The autotune keys decide how fast a run goes; the setting it trains with is in its tags.
NOT_IDENTITY_TRAINER = ("verbose", "resume", "autotune", "autotune_max_seconds", "autotune_cache")
NOT_IDENTITY_DATA = ("path", "download", "verify_checksum")  # where the same data comes from
NOT_IDENTITY_MODEL = ("reference",)  # a preset's published facts: about the preset, not what a run builds


def identity_tree(cfg: Any) -> Dict[str, Any]:
    """The resolved config without the keys that do not change what a run computes."""
    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    for key in NOT_IDENTITY:
        tree.pop(key, None)
    for group, ignored in (("trainer", NOT_IDENTITY_TRAINER), ("data", NOT_IDENTITY_DATA),
                           ("model", NOT_IDENTITY_MODEL)):
        node = tree.get(group)
        if isinstance(node, dict):
            tree[group] = {k: v for k, v in node.items() if k not in ignored}
    return tree


def config_hash(cfg: Any) -> str:
    """A short stable hash of the resolved config, leaving out reporting-only keys."""
    return _digest(identity_tree(cfg))


def group_hash(cfg: Any) -> str:
    """``config_hash`` without the seed: the runs that repeat one configuration share it."""
    tree = identity_tree(cfg)
    tree.pop("seed", None)
    return _digest(tree)


def _digest(tree: Dict[str, Any]) -> str:
    text = json.dumps(tree, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
