"""Checks of a model spec that its schema cannot express: list lengths, options the block takes, and
whether every feature map keeps a pixel for the input it is built for.

Each failure raises ``ConfigError`` naming the key, the value received and what is allowed. Framework-free:
a config is checked before anything is built.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from resnet_lab.errors import ConfigError, require_choice, require_fraction, require_positive
from resnet_lab.model.kinds import BLOCK_KINDS
from resnet_lab.model.plan import stage_widths, stem_width
from resnet_lab.model.spec import (BLOCK_TYPES, CONV_PADDINGS, HEAD_POOLS, PADDINGS, SHORTCUTS, STEM_POOLS,
                                   STRIDE_PLACEMENTS, STRIDE_POSITIONS)


def check_model(model: Any, image_shape: Sequence[int], num_classes: int) -> None:
    """Check a model config (or spec) against the input it will be built for."""
    stem, block = model.stem, model.block
    require_choice("model.stem.padding", stem.padding, PADDINGS)
    require_choice("model.stem.pool", stem.pool, STEM_POOLS)
    require_choice("model.stem.pool_padding", stem.pool_padding, PADDINGS)
    for key in ("width", "kernel_size", "stride", "pool_size", "pool_stride"):
        require_positive(f"model.stem.{key}", getattr(stem, key))

    require_choice("model.block.type", block.type, BLOCK_TYPES)
    require_choice("model.block.shortcut", block.shortcut, SHORTCUTS)
    require_choice("model.block.stride_on", block.stride_on, STRIDE_PLACEMENTS)
    require_choice("model.padding", model.padding, CONV_PADDINGS)
    require_choice("model.stride_position", model.stride_position, STRIDE_POSITIONS)
    for key in ("expansion", "groups", "base_width", "se_divisor"):
        require_positive(f"model.block.{key}", getattr(block, key))
    require_choice("model.head.pool", model.head.pool, HEAD_POOLS)
    require_fraction("model.head.dropout", model.head.dropout, "a rate in [0, 1)")
    require_fraction("model.drop_path_rate", model.drop_path_rate, "a rate in [0, 1)")
    require_fraction("model.bn_momentum", model.bn_momentum, "a number in [0, 1)")
    if not 0.0 <= block.se_ratio <= 1.0:
        raise ConfigError("model.block.se_ratio", block.se_ratio, "a reduction ratio in [0, 1]; 0 turns SE off")
    if not model.bn_epsilon > 0:
        raise ConfigError("model.bn_epsilon", model.bn_epsilon, "a positive number")
    if not model.width_multiplier > 0:
        raise ConfigError("model.width_multiplier", model.width_multiplier, "a positive number")
    _stem_convs(stem)
    _stage_lists(model)
    _block_options(model)
    if block.shortcut == "zero_pad":
        _zero_pad_widths(model)
    check_image_shape(image_shape)
    require_positive("data.num_classes", num_classes)
    _spatial_sizes(model, image_shape)


def _stage_lists(model: Any) -> None:
    lists = {"widths": list(model.widths), "layer_dims": list(model.layer_dims), "strides": list(model.strides)}
    for key, values in lists.items():
        if not values:
            raise ConfigError(f"model.{key}", values, "at least one stage")
        for value in values:
            if value < 1:
                raise ConfigError(f"model.{key}", values, "positive integers")
    n = len(lists["widths"])
    for key in ("layer_dims", "strides"):
        if len(lists[key]) != n:
            raise ConfigError(
                f"model.{key}", lists[key],
                f"one entry per stage; it has {len(lists[key])} entries but model.widths={lists['widths']} has {n}",
            )


def _stem_convs(stem: Any) -> None:
    convs = list(stem.convs)
    if convs and any(not isinstance(w, int) or w < 1 for w in convs):
        raise ConfigError("model.stem.convs", convs, "positive integers (widths of the deep stem's 3x3 convs)")
    if convs and convs[-1] != stem.width:
        raise ConfigError("model.stem.width", stem.width,
                          f"the last width of model.stem.convs={convs}, i.e. {convs[-1]}, when a deep stem is set")


def _block_options(model: Any) -> None:
    """Options that only some block types understand must not be set for the others."""
    block = model.block
    types = list(model.stage_block_types) or [block.type]
    for block_type in types:
        require_choice("model.stage_block_types" if model.stage_block_types else "model.block.type", block_type,
                BLOCK_TYPES)
    kinds = [BLOCK_KINDS[t] for t in types]
    bottleneck_only = {"stride_on": ("3x3", "'3x3'"), "groups": (1, "1"), "base_width": (64, "64")}
    for key, (neutral, shown) in bottleneck_only.items():
        value = getattr(block, key)
        if value != neutral and not all(kind.bottleneck for kind in kinds):
            raise ConfigError(f"model.block.{key}", value,
                              f"{shown} unless every block is a bottleneck ({key} applies to bottlenecks only; "
                              f"blocks here: {', '.join(sorted(set(types)))})")
    if block.zero_init_last and any(kind.preact for kind in kinds):
        raise ConfigError("model.block.zero_init_last", block.zero_init_last,
                          "false for pre-activation blocks, whose branch ends on a conv, not a BN")
    if block.avg_down and block.shortcut != "projection":
        raise ConfigError("model.block.avg_down", block.avg_down,
                          f"false unless model.block.shortcut='projection' (it is {block.shortcut!r})")
    if model.stage_block_types and len(model.stage_block_types) != len(model.widths):
        raise ConfigError("model.stage_block_types", list(model.stage_block_types),
                          f"empty or one block type per stage ({len(model.widths)} stages)")
    for width in stage_widths(model):
        if int(width * block.base_width / 64) < 1:
            raise ConfigError("model.block.base_width", block.base_width,
                              f"a value that leaves the bottleneck of a {width}-wide stage at least one channel")


def _zero_pad_widths(model: Any) -> None:
    """Option A pads channels with zeros, so a block can never have fewer channels than its input."""
    channels = stem_width(model)  # a composed config too, which dataclasses.replace cannot copy
    for width in stage_widths(model):
        out = width * model.block.expansion
        if out < channels:
            raise ConfigError("model.widths", list(model.widths),
                              f"non-decreasing channels with model.block.shortcut='zero_pad' "
                              f"(a stage of {out} channels follows {channels}); use 'projection'")
        channels = out


def _spatial_sizes(model: Any, image_shape: Sequence[int]) -> None:
    """Trace height and width through stem and stages: every feature map must keep at least one pixel."""
    stem = model.stem
    height, width = int(image_shape[0]), int(image_shape[1])
    for what, kernel, stride, padding in (
        ("the stem conv", 3 if stem.convs else stem.kernel_size, stem.stride, stem.padding),
        ("the stem pool", stem.pool_size, stem.pool_stride, stem.pool_padding),
    ):
        if what == "the stem pool" and stem.pool == "none":
            continue
        height, width = _out_size(height, kernel, stride, padding), _out_size(width, kernel, stride, padding)
        if height < 1 or width < 1:
            raise ConfigError(
                "data.image_shape", list(image_shape),
                f"an input of at least {kernel}x{kernel} pixels before {what} of model.stem={stem.name!r}",
            )


def _out_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    if padding == "symmetric":
        size += 2 * (kernel // 2)
    return (size - kernel) // stride + 1 if size >= kernel else 0


def check_image_shape(shape: Sequence[int]) -> None:
    values = list(shape)
    if len(values) != 3 or any(not isinstance(v, int) or v < 1 for v in values):
        raise ConfigError("data.image_shape", values, "[height, width, channels], three positive integers")
