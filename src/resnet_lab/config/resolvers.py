"""Config resolvers: values computed from other config values at compose time."""

from __future__ import annotations

from typing import List, Sequence

from resnet_lab.errors import ConfigError
from resnet_lab.model.kinds import BLOCK_KINDS


def layer_dims_for_depth(depth: int, stages: int, block_type: str) -> List[int]:
    """Equal blocks per stage giving ``depth`` weighted layers (stem conv + blocks + classifier).

    ``${layer_dims_for_depth:56,3,${model.block.type}}`` is [9, 9, 9] for basic blocks and [6, 6, 6]
    for bottlenecks: the way to compare block types at equal depth in one sweep.
    """
    if block_type not in BLOCK_KINDS:
        # Grouped by convs per block, the number depth is divided by; the sort is stable, so the table's
        # order holds within each group.
        names = sorted(BLOCK_KINDS, key=lambda name: BLOCK_KINDS[name].convs)
        raise ConfigError("model.block.type", block_type, "one of " + ", ".join(map(repr, names)))
    convs = BLOCK_KINDS[block_type].convs
    blocks, remainder = divmod(int(depth) - 2, int(stages) * convs)
    if remainder or blocks < 1:
        raise ConfigError("model.layer_dims", f"${{layer_dims_for_depth:{depth},{stages},{block_type}}}",
                          f"a depth of 2 + {stages} stages x blocks x {convs} convs")
    return [blocks] * int(stages)


def blocks_per_stage(blocks: int, widths: Sequence[int]) -> List[int]:
    """``${blocks_per_stage:1,${model.widths}}``: the same number of blocks in every stage, however many."""
    return [int(blocks)] * len(widths)


def python_env() -> str:
    """``${python_env:}``: the Python environment (venv) this command runs in, for a cluster job's setup lines."""
    import sys

    return sys.prefix


def register_resolvers() -> None:
    """Register once per process: jobs of joblib and submitit resolve their configs in their own process."""
    from omegaconf import OmegaConf

    for name, resolver in (("layer_dims_for_depth", layer_dims_for_depth), ("blocks_per_stage", blocks_per_stage),
                           ("python_env", python_env)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
