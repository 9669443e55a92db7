"""Config resolvers: values computed from other config values at compose time."""

from __future__ import annotations

from typing import List

from resnet_lab.errors import ConfigError

# Convolutions on the main path of each block type: what one block adds to the depth.
CONVS_PER_BLOCK = {"basic": 2, "preact_basic": 2, "bottleneck": 3, "preact_bottleneck": 3}


def layer_dims_for_depth(depth: int, stages: int, block_type: str) -> List[int]:
    """Equal blocks per stage giving ``depth`` weighted layers (stem conv + blocks + classifier).

    ``${layer_dims_for_depth:56,3,${model.block.type}}`` is [9, 9, 9] for basic blocks and [6, 6, 6]
    for bottlenecks: the way to compare block types at equal depth in one sweep.
    """
    if block_type not in CONVS_PER_BLOCK:
        raise ConfigError("model.block.type", block_type, "one of " + ", ".join(map(repr, CONVS_PER_BLOCK)))
    blocks, remainder = divmod(int(depth) - 2, int(stages) * CONVS_PER_BLOCK[block_type])
    if remainder or blocks < 1:
        raise ConfigError("model.layer_dims", f"${{layer_dims_for_depth:{depth},{stages},{block_type}}}",
                          f"a depth of 2 + {stages} stages x blocks x {CONVS_PER_BLOCK[block_type]} convs")
    return [blocks] * int(stages)


def register_resolvers() -> None:
    """Register once per process: jobs of joblib and submitit resolve their configs in their own process."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("layer_dims_for_depth"):
        OmegaConf.register_new_resolver("layer_dims_for_depth", layer_dims_for_depth)
