"""Layer helpers, the stem and the one residual block function every variant goes through.

Names follow ``stage{s}_block{b}_{op}`` so that a layer's place in the network can be read
off its name; analysis relies on ``shortcut`` marking the side branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import layers


@dataclass(frozen=True)
class LayerStyle:
    """What every conv and BN layer of one model shares."""

    conv_bias: bool
    bn_epsilon: float
    bn_momentum: float
    kernel_initializer: str
    dtype: Any = None  # a Keras dtype policy name, e.g. "mixed_bfloat16"; None: the global policy

    def conv(self, x, filters: int, kernel: int, stride: int, name: str, padding: str = "same"):
        return layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=self.conv_bias,
            kernel_initializer=self.kernel_initializer, dtype=self.dtype, name=name,
        )(x)

    def norm(self, x, name: str):
        return layers.BatchNormalization(
            epsilon=self.bn_epsilon, momentum=self.bn_momentum, dtype=self.dtype, name=name
        )(x)

    def relu(self, x, name: str):
        return layers.ReLU(dtype=self.dtype, name=name)(x)


@keras.saving.register_keras_serializable(package="resnet_lab")
class ChannelPad(layers.Layer):
    """Zero-pads the channel axis up to ``channels``: He et al.'s parameter-free option A shortcut."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, x):
        extra = self.channels - x.shape[-1]
        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def stem(x, spec: Any, style: LayerStyle):
    """Conv (+ BN + ReLU unless the blocks pre-activate) and an optional max-pool."""
    x = style.conv(x, spec.width, spec.kernel_size, spec.stride, "stem_conv", padding=spec.padding)
    if spec.norm:
        x = style.norm(x, "stem_bn")
        x = style.relu(x, "stem_relu")
    if spec.pool == "max":
        x = layers.MaxPooling2D(spec.pool_size, strides=spec.pool_stride, padding=spec.pool_padding,
                                dtype=style.dtype, name="stem_pool")(x)
    return x


def residual_block(x, block: Any, width: int, stride: int, prefix: str, style: LayerStyle):
    """One residual block of any supported type; returns its output tensor.

    basic:              conv3x3(s) BN ReLU conv3x3 BN        + shortcut, ReLU
    bottleneck:         conv1x1 BN ReLU conv3x3 BN ReLU conv1x1(x expansion) BN + shortcut, ReLU
                        (stride on the 3x3, or on the first 1x1 when block.stride_on == "1x1")
    preact_*:           the same convs, each preceded by BN ReLU; the shortcut stays clean
    """
    preact = block.type.startswith("preact_")
    bottleneck = block.type.endswith("bottleneck")
    out_channels = width * block.expansion
    needs_projection = stride != 1 or x.shape[-1] != out_channels

    main = x
    if preact:
        main = style.norm(x, f"{prefix}_preact_bn")
        main = style.relu(main, f"{prefix}_preact_relu")
    # Pre-activation projections read the activated input, as in He et al. 2016 and Keras' ResNetV2.
    shortcut_input = main if preact else x

    if bottleneck:
        stride_1x1, stride_3x3 = (stride, 1) if block.stride_on == "1x1" else (1, stride)
        convs = [(width, 1, stride_1x1), (width, 3, stride_3x3), (out_channels, 1, 1)]
    else:
        convs = [(width, 3, stride), (out_channels, 3, 1)]

    for i, (filters, kernel, conv_stride) in enumerate(convs, start=1):
        if i > 1 and preact:
            main = style.norm(main, f"{prefix}_bn{i - 1}")
            main = style.relu(main, f"{prefix}_relu{i - 1}")
        main = style.conv(main, filters, kernel, conv_stride, f"{prefix}_conv{i}")
        if not preact:
            main = style.norm(main, f"{prefix}_bn{i}")
            if i < len(convs):
                main = style.relu(main, f"{prefix}_relu{i}")

    shortcut = x
    if needs_projection:
        shortcut = _shortcut(shortcut_input, block, out_channels, stride, prefix, style, preact)
    x = layers.Add(dtype=style.dtype, name=f"{prefix}_add")([main, shortcut])
    if not preact:
        x = style.relu(x, f"{prefix}_out")
    return x


def _shortcut(x, block: Any, out_channels: int, stride: int, prefix: str, style: LayerStyle, preact: bool):
    if block.shortcut == "zero_pad":
        if stride != 1:
            # A 1x1 max-pool with stride s keeps every s-th pixel: the subsampling of option A.
            x = layers.MaxPooling2D(1, strides=stride, dtype=style.dtype, name=f"{prefix}_shortcut_pool")(x)
        return ChannelPad(out_channels, dtype=style.dtype, name=f"{prefix}_shortcut_pad")(x)
    x = style.conv(x, out_channels, 1, stride, f"{prefix}_shortcut_conv")
    if block.shortcut_norm and not preact:
        x = style.norm(x, f"{prefix}_shortcut_bn")
    return x
