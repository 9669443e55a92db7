"""The shape arithmetic of a network, read off its spec: stage widths, the scaled stem, every block in order.

Framework-free, so that validating a config never imports Keras; the builder follows this plan and
analysis reads stages and block counts from it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, List, NamedTuple

from resnet_lab.model.kinds import BLOCK_KINDS, BlockKind

if TYPE_CHECKING:
    from resnet_lab.model.spec import ModelConfig, StemConfig


class BlockSpec(NamedTuple):
    """One residual block: where it sits, its kind, its stage width and its stride."""

    stage: int  # counted from 1
    block: int  # counted from 1 within the stage
    kind: BlockKind
    width: int  # the stage width, width multiplier applied (a bottleneck's inner width)
    stride: int

    @property
    def name(self) -> str:
        """The prefix of every layer of the block: ``stage{s}_block{b}``."""
        return f"{stage_name(self.stage)}_block{self.block}"


def stage_name(stage: int) -> str:
    """The prefix of every layer of a stage, and its row in the model report."""
    return f"stage{stage}"


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def stage_widths(spec: ModelConfig) -> List[int]:
    return [_scale(w, spec.width_multiplier) for w in spec.widths]


def stem_width(spec: ModelConfig) -> int:
    """The stem's output channels, width multiplier applied; reads a composed config as well as a spec."""
    return _scale(spec.stem.width, spec.width_multiplier)


def scaled_stem(spec: ModelConfig) -> StemConfig:
    """The stem with the width multiplier applied, like every stage."""
    if spec.width_multiplier == 1.0:
        return spec.stem
    return dataclasses.replace(spec.stem, width=stem_width(spec),
                               convs=[_scale(w, spec.width_multiplier) for w in spec.stem.convs])


def block_plan(spec: ModelConfig) -> List[BlockSpec]:
    """Every block of the network, in the order the builder adds them."""
    types = list(spec.stage_block_types) or [spec.block.type] * len(spec.widths)
    plan = []
    for stage, (width, blocks, stride, block_type) in enumerate(
            zip(stage_widths(spec), spec.layer_dims, spec.strides, types), start=1):
        strided = 1 if spec.stride_position == "first" else blocks
        for block in range(1, blocks + 1):
            plan.append(BlockSpec(stage, block, BLOCK_KINDS[block_type], width, stride if block == strided else 1))
    return plan
