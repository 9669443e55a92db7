"""The typed spec of a network: stem, block, per-stage lists, head, and the values each field allows.

Hydra validates ``conf/model/`` against these dataclasses at compose time; ``OmegaConf.to_object(cfg.model)``
turns a composed config into the plain ``ModelConfig`` the builder takes. Rules across fields are in ``checks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from resnet_lab.model.kinds import BLOCK_KINDS

# Allowed values, shared by the checks, the builder and the docs.
BLOCK_TYPES = tuple(BLOCK_KINDS)  # basic, bottleneck, preact_basic, preact_bottleneck
STRIDE_PLACEMENTS = ("3x3", "1x1")
SHORTCUTS = ("projection", "zero_pad")
PADDINGS = ("same", "valid", "symmetric")  # symmetric: explicit k//2 zero-padding, as PyTorch pads
CONV_PADDINGS = ("same", "symmetric")
STRIDE_POSITIONS = ("first", "last")
STEM_POOLS = ("none", "max")
HEAD_POOLS = ("avg", "max")


@dataclass
class StemConfig:
    name: str = MISSING
    width: int = 64  # filters of the stem convolution
    kernel_size: int = 3
    stride: int = 1
    padding: str = "same"  # same | valid (the seed's) | symmetric (keras.applications, PyTorch)
    convs: List[int] = field(default_factory=list)  # ResNet-C deep stem: widths of its 3x3 convs, last == width
    norm: bool = True  # BN + ReLU after the conv; pre-activation nets leave it to the first block
    pool: str = "none"  # none | max
    pool_size: int = 3
    pool_stride: int = 2
    pool_padding: str = "same"  # same | valid | symmetric


@dataclass
class BlockConfig:
    type: str = MISSING  # basic | bottleneck | preact_basic | preact_bottleneck
    expansion: int = 1  # output channels = stage width * expansion (4 for bottlenecks)
    stride_on: str = "3x3"  # bottleneck stride on the 3x3 (v1.5, torchvision) or the first 1x1 (v1)
    shortcut: str = "projection"  # where shapes change: 1x1 conv (B) or zero-padded identity (A)
    shortcut_norm: bool = True  # BN after the projection conv (the seed has none)
    avg_down: bool = False  # ResNet-D: 2x2 average-pool, then a stride-1 projection, where the stride is
    subsample_identity: bool = False  # stride without a channel change: 1x1 max-pool, not a projection (Keras V2)
    groups: int = 1  # ResNeXt cardinality: groups of the bottleneck's 3x3 conv
    base_width: int = 64  # bottleneck inner width = width * base_width / 64 * groups (128: Wide ResNet-50-2)
    se_ratio: float = 0.0  # squeeze-and-excitation reduction (1/16 in SENet); 0 turns it off
    se_divisor: int = 1  # round the squeeze width to a multiple of this (timm uses 8)
    zero_init_last: bool = False  # the branch's last BN starts at gamma 0, so each block starts as identity


@dataclass
class HeadConfig:
    pool: str = "avg"  # global pooling before the classifier: avg | max
    dropout: float = 0.0  # dropout rate before the classifier


@dataclass
class ReferenceConfig:
    """A published fact the preset must reproduce; checked by the test suite."""

    params: int = MISSING
    count: str = "trainable"  # trainable | total (Keras counts BN moving statistics in total)
    depth: Optional[int] = None  # when it differs from the number in the preset's name, and why
    input_shape: List[int] = MISSING
    num_classes: int = MISSING
    source: str = MISSING  # where the number comes from


@dataclass
class ModelConfig:
    name: str = MISSING
    stem: StemConfig = MISSING
    block: BlockConfig = MISSING
    widths: List[int] = MISSING  # filters per stage (bottleneck: the inner width)
    layer_dims: List[int] = MISSING  # residual blocks per stage
    strides: List[int] = MISSING  # stride of the first block of each stage
    head: HeadConfig = field(default_factory=HeadConfig)
    conv_bias: bool = False  # biases on every conv (the seed and keras.applications v1 use them)
    bias_without_norm: bool = False  # a bias on convs that no BN follows (keras.applications v2)
    padding: str = "same"  # strided convs: same (TensorFlow's) | symmetric (PyTorch, keras.applications v2)
    stride_position: str = "first"  # which block of a stage strides: first (usual) | last (Keras V2)
    width_multiplier: float = 1.0  # scales every width, stem and stages alike
    stage_block_types: List[str] = field(default_factory=list)  # a block type per stage; empty: block.type
    drop_path_rate: float = 0.0  # stochastic depth, rising linearly from 0 to this over the blocks
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention: weight of the old moving average
    kernel_initializer: str = "he_normal"
    reference: Optional[ReferenceConfig] = None
