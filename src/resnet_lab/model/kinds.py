"""The block types and what sets them apart: the one table config, validation and the builder read.

Framework-free and importing nothing of resnet_lab: ``model/spec.py`` and ``config/`` derive allowed values here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class BlockKind:
    name: str
    preact: bool  # BN + ReLU before each conv, nothing after the addition (He et al. 2016, "v2")
    bottleneck: bool  # 1x1 reduce, 3x3, 1x1 expand; otherwise two 3x3 convs
    convs: int  # convolutions on the main path: what one block adds to the depth
    expansion: int  # the usual output channels per unit of stage width (conf/model/block/*.yaml)


# In the order error messages and docs list them.
BLOCK_KINDS: Dict[str, BlockKind] = {kind.name: kind for kind in (
    BlockKind("basic", preact=False, bottleneck=False, convs=2, expansion=1),
    BlockKind("bottleneck", preact=False, bottleneck=True, convs=3, expansion=4),
    BlockKind("preact_basic", preact=True, bottleneck=False, convs=2, expansion=1),
    BlockKind("preact_bottleneck", preact=True, bottleneck=True, convs=3, expansion=4),
)}
