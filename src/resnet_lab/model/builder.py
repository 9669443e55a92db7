"""The one builder: a typed model spec in, a functional ``keras.Model`` out."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras
from keras import layers

from resnet_lab.model.blocks import LayerStyle, residual_block, stem

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
        bn_epsilon=spec.bn_epsilon,
        bn_momentum=spec.bn_momentum,
        kernel_initializer=spec.kernel_initializer,
        dtype=PRECISION_POLICIES[precision],
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = stem(inputs, spec.stem, style)
    for s, (width, blocks, stride) in enumerate(zip(spec.widths, spec.layer_dims, spec.strides), start=1):
        for b in range(1, blocks + 1):
            x = residual_block(x, spec.block, width, stride if b == 1 else 1, f"stage{s}_block{b}", style)
    if spec.block.type.startswith("preact_"):
        # Pre-activation blocks end on an addition; normalize and activate once before pooling.
        x = style.norm(x, "post_bn")
        x = style.relu(x, "post_relu")
    pool = layers.GlobalAveragePooling2D if spec.head.pool == "avg" else layers.GlobalMaxPooling2D
    x = pool(dtype=style.dtype, name="head_pool")(x)
    if spec.head.dropout > 0:
        x = layers.Dropout(spec.head.dropout, dtype=style.dtype, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name or spec.name)
