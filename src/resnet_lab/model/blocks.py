"""The stem and the one residual block function every variant goes through.

Names follow ``stage{s}_block{b}_{op}`` so that a layer's place in the network can be read
off its name; analysis relies on ``_shortcut_`` and ``_se_`` marking side branches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras import layers

from resnet_lab.model.layers import ChannelPad, DropPath, LayerStyle, squeeze_excite

if TYPE_CHECKING:
    from resnet_lab.model.kinds import BlockKind
    from resnet_lab.model.spec import BlockConfig, StemConfig


def stem(x, spec: StemConfig, style: LayerStyle):
    """One conv (or a ResNet-C stack of 3x3 convs), BN + ReLU unless the blocks pre-activate, a pool."""
    widths = list(spec.convs) or [spec.width]
    kernel = 3 if spec.convs else spec.kernel_size
    for i, width in enumerate(widths, start=1):
        last = i == len(widths)
        suffix = "" if last else str(i)
        x = style.conv(x, width, kernel, spec.stride if i == 1 else 1, f"stem_conv{suffix}",
                       padding=spec.padding if i == 1 else "same", normalized=spec.norm or not last)
        if spec.norm or not last:
            x = style.norm(x, f"stem_bn{suffix}")
            x = style.relu(x, f"stem_relu{suffix}")
    if spec.pool == "max":
        x = style.max_pool(x, spec.pool_size, spec.pool_stride, spec.pool_padding, "stem_pool")
    return x


def residual_block(x, block: BlockConfig, kind: BlockKind, width: int, stride: int, prefix: str, style: LayerStyle,
                   drop_rate: float = 0.0):
    """One residual block of any supported kind; returns its output tensor.

    basic:       conv3x3(s) BN ReLU conv3x3 BN                          + shortcut, ReLU
    bottleneck:  conv1x1 BN ReLU conv3x3(groups) BN ReLU conv1x1(x expansion) BN + shortcut, ReLU
                 (stride on the 3x3, or on the first 1x1 when block.stride_on == "1x1")
    preact_*:    the same convs, each preceded by BN ReLU; nothing after the addition
    Squeeze-and-excitation and stochastic depth act on the branch just before the addition.
    """
    preact = kind.preact
    out_channels = width * block.expansion

    branch = x
    if preact:
        branch = style.norm(x, f"{prefix}_preact_bn")
        branch = style.relu(branch, f"{prefix}_preact_relu")
    # Pre-activation projections read the activated input, as in He et al. 2016 and Keras' ResNetV2.
    projection_input = branch if preact else x

    if kind.bottleneck:
        inner = int(width * block.base_width / 64) * block.groups
        stride_1x1, stride_3x3 = (stride, 1) if block.stride_on == "1x1" else (1, stride)
        convs = [(inner, 1, stride_1x1, 1), (inner, 3, stride_3x3, block.groups), (out_channels, 1, 1, 1)]
    else:
        convs = [(width, 3, stride, 1), (out_channels, 3, 1, 1)]

    for i, (filters, kernel, conv_stride, groups) in enumerate(convs, start=1):
        last = i == len(convs)
        if i > 1 and preact:
            branch = style.norm(branch, f"{prefix}_bn{i - 1}")
            branch = style.relu(branch, f"{prefix}_relu{i - 1}")
        branch = style.conv(branch, filters, kernel, conv_stride, f"{prefix}_conv{i}", groups=groups,
                            normalized=not (preact and last))
        if not preact:
            branch = style.norm(branch, f"{prefix}_bn{i}", zero_gamma=block.zero_init_last and last)
            if not last:
                branch = style.relu(branch, f"{prefix}_relu{i}")

    if block.se_ratio > 0:
        branch = squeeze_excite(branch, block.se_ratio, block.se_divisor, prefix, style)
    if drop_rate > 0:
        branch = DropPath(drop_rate, dtype=style.dtype, name=f"{prefix}_drop_path")(branch)

    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = _shortcut(x, projection_input, block, out_channels, stride, prefix, style, preact)
    # Shortcut first: the same graph order, and so the same weight order, as keras.applications.
    x = layers.Add(dtype=style.dtype, name=f"{prefix}_add")([shortcut, branch])
    if not preact:
        x = style.relu(x, f"{prefix}_out")
    return x


def _shortcut(x, projection_input, block: BlockConfig, out_channels: int, stride: int, prefix: str, style: LayerStyle,
              preact: bool):
    same_channels = x.shape[-1] == out_channels
    if block.shortcut == "zero_pad" or (same_channels and block.subsample_identity):
        if stride != 1:
            # A 1x1 max-pool with stride s keeps every s-th pixel: parameter-free subsampling.
            x = layers.MaxPooling2D(1, strides=stride, dtype=style.dtype, name=f"{prefix}_shortcut_pool")(x)
        if same_channels:
            return x
        return ChannelPad(out_channels, dtype=style.dtype, name=f"{prefix}_shortcut_pad")(x)
    x = projection_input
    if block.avg_down and stride != 1:
        x = layers.AveragePooling2D(stride, strides=stride, padding="same", dtype=style.dtype,
                                    name=f"{prefix}_shortcut_avgpool")(x)
        stride = 1
    norm = block.shortcut_norm and not preact
    x = style.conv(x, out_channels, 1, stride, f"{prefix}_shortcut_conv", normalized=norm)
    if norm:
        x = style.norm(x, f"{prefix}_shortcut_bn")
    return x
