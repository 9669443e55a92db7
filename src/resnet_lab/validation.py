"""Cross-field checks that a schema cannot express, run before anything is built or logged.

Each failure raises ``ConfigError`` naming the key, the value received and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from omegaconf import OmegaConf

from resnet_lab import config as C
from resnet_lab.errors import ConfigError
from resnet_lab.model.kinds import BLOCK_KINDS
from resnet_lab.model.plan import stage_widths, stem_width


def validate_train_config(cfg: Any, schema: type = C.TrainAppConfig) -> None:
    reject_unknown_keys(cfg, schema)
    validate_data(cfg.data)
    validate_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    validate_optimizer(cfg.optimizer)
    validate_schedule(cfg.schedule)
    validate_trainer(cfg.trainer)
    if cfg.trainer.resume and not cfg.tracking.enabled:
        raise ConfigError("trainer.resume", True, "false while tracking.enabled=false: the MLflow run says where "
                          "its checkpoint is")


def validate_describe_config(cfg: Any) -> None:
    reject_unknown_keys(cfg, C.DescribeAppConfig)
    _choice("data.name", cfg.data.name, C.DATASETS)
    _image_shape(cfg.data.image_shape)
    _positive("data.num_classes", cfg.data.num_classes)
    validate_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    _choice("describe.format", cfg.describe.format, C.DESCRIBE_FORMATS)
    save = cfg.describe.save_model
    if save is not None and not str(save).endswith(".keras"):
        raise ConfigError("describe.save_model", save, "null or a file path ending in .keras")


def reject_unknown_keys(cfg: Any, schema: type, prefix: str = "") -> None:
    """Keys added with a leading '+' that no schema field knows would be silently ignored: refuse them."""
    import dataclasses

    from omegaconf import DictConfig

    if not isinstance(cfg, DictConfig) or not dataclasses.is_dataclass(schema):
        return
    fields = {f.name: f.type for f in dataclasses.fields(schema)}
    hints = _field_types(schema)
    for key in cfg.keys():
        if key == "hydra":
            continue
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", cfg[key], f"a key the schema defines: {', '.join(fields)}")
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none():
            reject_unknown_keys(node, hints.get(key), f"{prefix}{key}.")


def _field_types(schema: type) -> dict:
    import typing

    types = {}
    for name, hint in typing.get_type_hints(schema).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        types[name] = args[0] if typing.get_origin(hint) is typing.Union and args else hint
    return types


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
    _choice("model.padding", model.padding, C.CONV_PADDINGS)
    _choice("model.stride_position", model.stride_position, C.STRIDE_POSITIONS)
    for key in ("expansion", "groups", "base_width", "se_divisor"):
        _positive(f"model.block.{key}", getattr(block, key))
    _choice("model.head.pool", model.head.pool, C.HEAD_POOLS)
    _fraction("model.head.dropout", model.head.dropout, "a rate in [0, 1)")
    _fraction("model.drop_path_rate", model.drop_path_rate, "a rate in [0, 1)")
    _fraction("model.bn_momentum", model.bn_momentum, "a number in [0, 1)")
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
        _choice("model.stage_block_types" if model.stage_block_types else "model.block.type", block_type,
                C.BLOCK_TYPES)
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


def validate_data(data: Any) -> None:
    _choice("data.name", data.name, C.DATASETS)
    for key in ("path", "num_classes"):  # `???` in a data config: the user must give it
        if OmegaConf.is_config(data) and OmegaConf.is_missing(data, key):
            raise ConfigError(f"data.{key}", "???", f"a value; data={data.name} needs data.path and data.num_classes")
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
    if data.name == "image_folder" and data.path is None:
        raise ConfigError("data.path", None, "the folder holding one sub-folder of images per class")
    for key in ("crop_padding", "cutout"):
        value = getattr(data.augment, key)
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"data.augment.{key}", value, "zero (off) or a positive number of pixels")


def validate_optimizer(optimizer: Any) -> None:
    _choice("optimizer.name", optimizer.name, C.OPTIMIZERS)
    if not optimizer.learning_rate > 0:
        raise ConfigError("optimizer.learning_rate", optimizer.learning_rate, "a positive number")
    if not 0.0 <= optimizer.momentum < 1.0:
        raise ConfigError("optimizer.momentum", optimizer.momentum, "a number in [0, 1)")
    if optimizer.weight_decay < 0:
        raise ConfigError("optimizer.weight_decay", optimizer.weight_decay, "zero or a positive number")
    _choice("optimizer.weight_decay_mode", optimizer.weight_decay_mode, C.WEIGHT_DECAY_MODES)
    for key in ("clipnorm", "global_clipnorm"):
        value = getattr(optimizer, key)
        if value is not None and not value > 0:
            raise ConfigError(f"optimizer.{key}", value, "null or a positive number")
    if optimizer.clipnorm is not None and optimizer.global_clipnorm is not None:
        raise ConfigError("optimizer.global_clipnorm", optimizer.global_clipnorm,
                          "null while optimizer.clipnorm is set; Keras clips one way at a time")


def validate_schedule(schedule: Any) -> None:
    _choice("schedule.name", schedule.name, C.SCHEDULES)
    if schedule.warmup_epochs < 0:
        raise ConfigError("schedule.warmup_epochs", schedule.warmup_epochs, "zero or a positive number of epochs")
    if not 0.0 <= schedule.min_lr_ratio <= 1.0:
        raise ConfigError("schedule.min_lr_ratio", schedule.min_lr_ratio, "a fraction in [0, 1]")
    if schedule.warmup_epochs > 0 and schedule.name in ("step", "one_cycle"):
        raise ConfigError("schedule.warmup_epochs", schedule.warmup_epochs,
                          f"0 with schedule.name={schedule.name!r} (warm-up applies to constant and cosine schedules)")
    if schedule.name == "warmup_cosine" and not schedule.warmup_epochs > 0:
        raise ConfigError("schedule.warmup_epochs", schedule.warmup_epochs, "a positive number of epochs for warmup_cosine")
    milestones = list(schedule.milestones)
    if schedule.name == "step":
        if not milestones or any(m <= 0 for m in milestones) or milestones != sorted(milestones):
            raise ConfigError("schedule.milestones", milestones, "increasing positive epochs, at least one")
        if not 0.0 < schedule.gamma <= 1.0:
            raise ConfigError("schedule.gamma", schedule.gamma, "a factor in (0, 1]")
    if schedule.name == "one_cycle":
        if not 0.0 < schedule.pct_start < 1.0:
            raise ConfigError("schedule.pct_start", schedule.pct_start, "a fraction strictly between 0 and 1")
        for key in ("div_factor", "final_div_factor"):
            if not getattr(schedule, key) >= 1.0:
                raise ConfigError(f"schedule.{key}", getattr(schedule, key), "a number >= 1")


def validate_trainer(trainer: Any) -> None:
    _positive("trainer.epochs", trainer.epochs)
    _positive("trainer.batch_size", trainer.batch_size)
    if trainer.steps_per_epoch is not None:
        _positive("trainer.steps_per_epoch", trainer.steps_per_epoch)
    _choice("trainer.precision", trainer.precision, C.PRECISIONS)
    _choice("trainer.monitor", trainer.monitor, C.MONITORS)
    if trainer.verbose is not None:
        _choice("trainer.verbose", trainer.verbose, (0, 1, 2))
    if not 0.0 <= trainer.label_smoothing < 1.0:
        raise ConfigError("trainer.label_smoothing", trainer.label_smoothing, "a fraction in [0, 1)")
    if trainer.early_stopping_patience is not None:
        _positive("trainer.early_stopping_patience", trainer.early_stopping_patience)
    _choice("trainer.distribution", trainer.distribution, C.DISTRIBUTIONS)
    if not trainer.autotune_max_seconds > 0:
        raise ConfigError("trainer.autotune_max_seconds", trainer.autotune_max_seconds,
                          "a positive number of seconds (trainer.autotune=false turns probing off)")


def _image_shape(shape: Sequence[int]) -> None:
    values = list(shape)
    if len(values) != 3 or any(not isinstance(v, int) or v < 1 for v in values):
        raise ConfigError("data.image_shape", values, "[height, width, channels], three positive integers")


def _fraction(key: str, value: float, allowed: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(key, value, allowed)


def _choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(repr(a) for a in allowed))


def _positive(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(key, value, "a positive integer")


def validate_bench_config(cfg: Any) -> None:
    """A benchmark composes the training groups, so it passes the training checks and its own."""
    validate_train_config(cfg, C.BenchAppConfig)
    bench = cfg.bench
    for key in ("steps", "warmup_steps", "repeats"):
        _positive(f"bench.{key}", getattr(bench, key))
    _choice("bench.format", bench.format, C.BENCH_FORMATS)
    for name in bench.baselines:
        if name not in C.BENCH_BASELINES:
            raise ConfigError("bench.baselines", list(bench.baselines),
                              "a list drawn from " + ", ".join(repr(b) for b in C.BENCH_BASELINES))


def validate_compare_config(cfg: Any) -> None:
    """What ``resnet-lab-compare`` is asked for, checked before the store is opened."""
    from resnet_lab.compare_columns import GROUPINGS, columns_for

    compare = cfg.compare
    _choice("compare.format", compare.format, C.COMPARE_FORMATS)
    _choice("compare.group", compare.group, GROUPINGS)
    columns = columns_for(list(compare.metrics))
    if compare.sort not in columns:
        raise ConfigError("compare.sort", compare.sort, "a column: " + ", ".join(columns))
    if compare.status is not None and compare.status not in C.RUN_STATUSES:
        raise ConfigError("compare.status", compare.status, "null or one of " + ", ".join(map(repr, C.RUN_STATUSES)))
