"""Cross-field checks that a schema cannot express, run before anything is built or logged.

Each failure raises ``ConfigError`` naming the key, the value received and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from resnet_lab import config as C
from resnet_lab.errors import ConfigError


def validate_train_config(cfg: Any) -> None:
    validate_data(cfg.data)
    validate_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    validate_optimizer(cfg.optimizer)
    validate_schedule(cfg.schedule)
    validate_trainer(cfg.trainer)


def validate_describe_config(cfg: Any) -> None:
    _choice("data.name", cfg.data.name, C.DATASETS)
    _image_shape(cfg.data.image_shape)
    _positive("data.num_classes", cfg.data.num_classes)
    validate_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    _choice("describe.format", cfg.describe.format, C.DESCRIBE_FORMATS)
    save = cfg.describe.save_model
    if save is not None and not str(save).endswith(".keras"):
        raise ConfigError("describe.save_model", save, "null or a file path ending in .keras")


def validate_model(model: Any, image_shape: Sequence[int], num_classes: int) -> None:
    """Check a model config (or spec) against the input it will be built for."""
    stem, block = model.stem, model.block
    _choice("model.stem.padding", stem.padding, C.PADDINGS)
    _choice("model.stem.pool", stem.pool, C.STEM_POOLS)
    _choice("model.stem.pool_padding", stem.pool_padding, C.PADDINGS)
    for key in ("width", "kernel_size", "stride", "pool_size", "pool_stride"):
        _positive(f"model.stem.{key}", getattr(stem, key))

    _choice("model.block.type", block.type, C.BLOCK_TYPES)
    _choice("model.block.shortcut", block.shortcut, C.SHORTCUTS)
    _choice("model.block.stride_on", block.stride_on, C.STRIDE_PLACEMENTS)
    _positive("model.block.expansion", block.expansion)
    if block.stride_on == "1x1" and "bottleneck" not in block.type:
        raise ConfigError("model.block.stride_on", block.stride_on,
                          f"'1x1' applies to bottleneck blocks only; model.block.type is {block.type!r}, use '3x3'")
    _choice("model.head.pool", model.head.pool, C.HEAD_POOLS)
    if not 0.0 <= model.head.dropout < 1.0:
        raise ConfigError("model.head.dropout", model.head.dropout, "a rate in [0, 1)")
    if not model.bn_epsilon > 0:
        raise ConfigError("model.bn_epsilon", model.bn_epsilon, "a positive number")
    if not 0.0 <= model.bn_momentum < 1.0:
        raise ConfigError("model.bn_momentum", model.bn_momentum, "a number in [0, 1)")

    _stage_lists(model)
    if block.shortcut == "zero_pad":
        _zero_pad_widths(model)
    _image_shape(image_shape)
    _positive("data.num_classes", num_classes)
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


def _zero_pad_widths(model: Any) -> None:
    """Option A pads channels with zeros, so a block can never have fewer channels than its input."""
    channels = model.stem.width
    for width in model.widths:
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
        ("the stem conv", stem.kernel_size, stem.stride, stem.padding),
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
    return (size - kernel) // stride + 1 if size >= kernel else 0


def validate_data(data: Any) -> None:
    _choice("data.name", data.name, C.DATASETS)
    _image_shape(data.image_shape)
    _positive("data.num_classes", data.num_classes)
    if data.num_classes < 2:
        raise ConfigError("data.num_classes", data.num_classes, "at least 2 classes")
    for key in ("val_fraction", "test_fraction"):
        value = getattr(data, key)
        if not 0.0 < value < 1.0:
            raise ConfigError(f"data.{key}", value, "a fraction strictly between 0 and 1")
    if data.val_fraction + data.test_fraction >= 1.0:
        raise ConfigError("data.val_fraction", data.val_fraction,
                          f"a fraction that leaves training data beside data.test_fraction={data.test_fraction}")
    for key in ("train_size", "val_size", "test_size"):
        _positive(f"data.{key}", getattr(data, key))


def validate_optimizer(optimizer: Any) -> None:
    _choice("optimizer.name", optimizer.name, C.OPTIMIZERS)
    if not optimizer.learning_rate > 0:
        raise ConfigError("optimizer.learning_rate", optimizer.learning_rate, "a positive number")
    if not 0.0 <= optimizer.momentum < 1.0:
        raise ConfigError("optimizer.momentum", optimizer.momentum, "a number in [0, 1)")
    if optimizer.weight_decay < 0:
        raise ConfigError("optimizer.weight_decay", optimizer.weight_decay, "zero or a positive number")
    if optimizer.clipnorm is not None and not optimizer.clipnorm > 0:
        raise ConfigError("optimizer.clipnorm", optimizer.clipnorm, "null or a positive number")


def validate_schedule(schedule: Any) -> None:
    _choice("schedule.name", schedule.name, C.SCHEDULES)
    if schedule.warmup_epochs < 0:
        raise ConfigError("schedule.warmup_epochs", schedule.warmup_epochs, "zero or a positive number of epochs")
    if not 0.0 <= schedule.min_lr_ratio <= 1.0:
        raise ConfigError("schedule.min_lr_ratio", schedule.min_lr_ratio, "a fraction in [0, 1]")


def validate_trainer(trainer: Any) -> None:
    _positive("trainer.epochs", trainer.epochs)
    _positive("trainer.batch_size", trainer.batch_size)
    if trainer.steps_per_epoch is not None:
        _positive("trainer.steps_per_epoch", trainer.steps_per_epoch)
    _choice("trainer.precision", trainer.precision, C.PRECISIONS)
    monitors = ("val_accuracy", "val_loss", "accuracy", "loss")
    _choice("trainer.monitor", trainer.monitor, monitors)
    if trainer.verbose is not None:
        _choice("trainer.verbose", trainer.verbose, (0, 1, 2))


def _image_shape(shape: Sequence[int]) -> None:
    values = list(shape)
    if len(values) != 3 or any(not isinstance(v, int) or v < 1 for v in values):
        raise ConfigError("data.image_shape", values, "[height, width, channels], three positive integers")


def _choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(repr(a) for a in allowed))


def _positive(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(key, value, "a positive integer")


def validate_bench_config(cfg: Any) -> None:
    """A benchmark composes the training groups, so it passes the training checks and its own."""
    validate_train_config(cfg)
    bench = cfg.bench
    for key in ("steps", "warmup_steps", "repeats"):
        _positive(f"bench.{key}", getattr(bench, key))
    _choice("bench.format", bench.format, C.BENCH_FORMATS)
    for name in bench.baselines:
        if name not in C.BENCH_BASELINES:
            raise ConfigError("bench.baselines", list(bench.baselines),
                              "a list drawn from " + ", ".join(repr(b) for b in C.BENCH_BASELINES))
