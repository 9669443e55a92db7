"""The one builder: a typed model spec in, a functional ``keras.Model`` out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import keras
from keras import layers

from resnet_lab.model.blocks import residual_block, stem
from resnet_lab.model.inputs import InputNormalization
from resnet_lab.model.layers import LayerStyle
from resnet_lab.model.plan import block_plan, scaled_stem

if TYPE_CHECKING:
    from resnet_lab.model.spec import ModelConfig

# Keras dtype policies for `trainer.precision`.
PRECISION_POLICIES = {"fp32": "float32", "mixed_bf16": "mixed_bfloat16", "mixed_fp16": "mixed_float16"}


def build_model(
    spec: ModelConfig,
    input_shape: Sequence[int],
    num_classes: int,
    precision: str = "fp32",
    name: Optional[str] = None,
    normalization: Optional[InputNormalization] = None,
) -> keras.Model:
    """Build the network described by ``spec`` (a ``ModelConfig`` object; see ``spec.py``).

    The model takes ``input_shape`` images (height, width, channels) and returns
    ``num_classes`` logits, always in float32 so losses stay stable under mixed precision.
    With ``normalization`` its first layer standardizes them (``model/inputs.py``), so it takes the
    images as the data set stores them; without it, images already preprocessed.
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
    if normalization is not None and len(normalization.mean) != input_shape[-1]:
        raise ValueError(f"the input normalization has {len(normalization.mean)} channels but the images "
                         f"{list(input_shape)} have {input_shape[-1]}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs if normalization is None else normalization.layer()(inputs)
    x = stem(x, scaled_stem(spec), style)
    plan = block_plan(spec)
    for index, planned in enumerate(plan):
        drop = spec.drop_path_rate * index / max(1, len(plan) - 1)
        x = residual_block(x, spec.block, planned.kind, planned.width, planned.stride, planned.name, style, drop)
    if plan and plan[-1].kind.preact:
        # Pre-activation blocks end on an addition; normalize and activate once before pooling.
        x = style.norm(x, "post_bn")
        x = style.relu(x, "post_relu")
    pool = layers.GlobalAveragePooling2D if spec.head.pool == "avg" else layers.GlobalMaxPooling2D
    x = pool(dtype=style.dtype, name="head_pool")(x)
    if spec.head.dropout > 0:
        x = layers.Dropout(spec.head.dropout, dtype=style.dtype, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name or spec.name)

