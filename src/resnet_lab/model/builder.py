"""The one builder: a typed model spec in, a functional ``keras.Model`` out."""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

import keras
from keras import layers

from resnet_lab.model.blocks import residual_block, stem
from resnet_lab.model.layers import LayerStyle

# Keras dtype policies for `trainer.precision`.
PRECISION_POLICIES = {"fp32": "float32", "mixed_bf16": "mixed_bfloat16", "mixed_fp16": "mixed_float16"}


def build_model(
    spec: Any,
    input_shape: Sequence[int],
    num_classes: int,
    precision: str = "fp32",
    name: Optional[str] = None,
) -> keras.Model:
    """Build the network described by ``spec`` (a ``ModelConfig`` object; see ``config.py``).

    The model takes ``input_shape`` images (height, width, channels) and returns
    ``num_classes`` logits, always in float32 so losses stay stable under mixed precision.
    """
    style = LayerStyle(
        conv_bias=spec.conv_bias,
        bias_without_norm=spec.bias_without_norm,
        padding=spec.padding,
        bn_epsilon=spec.bn_epsilon,
        bn_momentum=spec.bn_momentum,
        kernel_initializer=spec.kernel_initializer,
        dtype=PRECISION_POLICIES[precision],
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = stem(inputs, scaled_stem(spec), style)
    plan = block_plan(spec)
    for index, (s, b, block_type, width, stride) in enumerate(plan):
        drop = spec.drop_path_rate * index / max(1, len(plan) - 1)
        x = residual_block(x, spec.block, block_type, width, stride, f"stage{s}_block{b}", style, drop)
    if plan and plan[-1][2].startswith("preact_"):
        # Pre-activation blocks end on an addition; normalize and activate once before pooling.
        x = style.norm(x, "post_bn")
        x = style.relu(x, "post_relu")
    pool = layers.GlobalAveragePooling2D if spec.head.pool == "avg" else layers.GlobalMaxPooling2D
    x = pool(dtype=style.dtype, name="head_pool")(x)
    if spec.head.dropout > 0:
        x = layers.Dropout(spec.head.dropout, dtype=style.dtype, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name or spec.name)


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def stage_widths(spec: Any) -> List[int]:
    return [_scale(w, spec.width_multiplier) for w in spec.widths]


def scaled_stem(spec: Any) -> Any:
    """The stem with the width multiplier applied, like every stage."""
    if spec.width_multiplier == 1.0:
        return spec.stem
    return dataclasses.replace(spec.stem, width=_scale(spec.stem.width, spec.width_multiplier),
                               convs=[_scale(w, spec.width_multiplier) for w in spec.stem.convs])


def block_plan(spec: Any) -> List[Tuple[int, int, str, int, int]]:
    """(stage, block, block type, width, stride) for every block, in order."""
    types = list(spec.stage_block_types) or [spec.block.type] * len(spec.widths)
    plan = []
    for s, (width, blocks, stride, block_type) in enumerate(
            zip(stage_widths(spec), spec.layer_dims, spec.strides, types), start=1):
        strided = 1 if spec.stride_position == "first" else blocks
        for b in range(1, blocks + 1):
            plan.append((s, b, block_type, width, stride if b == strided else 1))
    return plan
