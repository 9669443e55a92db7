"""Cross-field checks that a schema cannot express, run before anything is built or logged.

Each failure raises ``ConfigError`` naming the key, the value received and what is allowed.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from resnet_lab.config import choices
from resnet_lab.config.schema import BenchAppConfig, DescribeAppConfig, TrainAppConfig
from resnet_lab.errors import ConfigError, require_choice, require_positive
from resnet_lab.model.checks import check_image_shape, check_model


def validate_train_config(cfg: Any, schema: type = TrainAppConfig) -> None:
    reject_unknown_keys(cfg, schema)
    validate_data(cfg.data)
    check_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    validate_optimizer(cfg.optimizer)
    validate_schedule(cfg.schedule)
    validate_trainer(cfg.trainer)
    validate_registry(cfg.tracking)
    if cfg.trainer.resume and not cfg.tracking.enabled:
        raise ConfigError("trainer.resume", True, "false while tracking.enabled=false: the MLflow run says where "
                          "its checkpoint is")


def validate_registry(tracking: Any) -> None:
    """A registry name MLflow would refuse after training, refused before it; ``@`` would break the
    ``models:/NAME@champion`` URI."""
    name = tracking.register_model
    if name is not None and (not str(name).strip() or str(name) != str(name).strip()
                             or any(c in str(name) for c in choices.REGISTRY_NAME_FORBIDDEN)):
        raise ConfigError("tracking.register_model", name,
                          "null or a name without '/', ':' or '@' and without spaces at its ends (MLflow's "
                          "registry refuses '/' and ':'; '@' would break models:/NAME@champion)")
    require_choice("tracking.champion_metric", tracking.champion_metric, choices.CHAMPION_METRICS)


def validate_describe_config(cfg: Any) -> None:
    reject_unknown_keys(cfg, DescribeAppConfig)
    require_choice("data.name", cfg.data.name, choices.DATASETS)
    check_image_shape(cfg.data.image_shape)
    require_positive("data.num_classes", cfg.data.num_classes)
    check_model(cfg.model, cfg.data.image_shape, cfg.data.num_classes)
    require_choice("describe.format", cfg.describe.format, choices.DESCRIBE_FORMATS)
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


def validate_data(data: Any) -> None:
    require_choice("data.name", data.name, choices.DATASETS)
    for key in ("path", "num_classes"):  # `???` in a data config: the user must give it
        if OmegaConf.is_config(data) and OmegaConf.is_missing(data, key):
            raise ConfigError(f"data.{key}", "???", f"a value; data={data.name} needs data.path and data.num_classes")
    check_image_shape(data.image_shape)
    require_positive("data.num_classes", data.num_classes)
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
        require_positive(f"data.{key}", getattr(data, key))
    if data.name == "image_folder" and data.path is None:
        raise ConfigError("data.path", None, "the folder holding one sub-folder of images per class")
    for key in ("crop_padding", "cutout"):
        value = getattr(data.augment, key)
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"data.augment.{key}", value, "zero (off) or a positive number of pixels")


def validate_optimizer(optimizer: Any) -> None:
    require_choice("optimizer.name", optimizer.name, choices.OPTIMIZERS)
    if not optimizer.learning_rate > 0:
        raise ConfigError("optimizer.learning_rate", optimizer.learning_rate, "a positive number")
    if not 0.0 <= optimizer.momentum < 1.0:
        raise ConfigError("optimizer.momentum", optimizer.momentum, "a number in [0, 1)")
    if optimizer.weight_decay < 0:
        raise ConfigError("optimizer.weight_decay", optimizer.weight_decay, "zero or a positive number")
    require_choice("optimizer.weight_decay_mode", optimizer.weight_decay_mode, choices.WEIGHT_DECAY_MODES)
    for key in ("clipnorm", "global_clipnorm"):
        value = getattr(optimizer, key)
        if value is not None and not value > 0:
            raise ConfigError(f"optimizer.{key}", value, "null or a positive number")
    if optimizer.clipnorm is not None and optimizer.global_clipnorm is not None:
        raise ConfigError("optimizer.global_clipnorm", optimizer.global_clipnorm,
                          "null while optimizer.clipnorm is set; Keras clips one way at a time")


def validate_schedule(schedule: Any) -> None:
    require_choice("schedule.name", schedule.name, choices.SCHEDULES)
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
    require_positive("trainer.epochs", trainer.epochs)
    require_positive("trainer.batch_size", trainer.batch_size)
    if trainer.steps_per_epoch is not None:
        require_positive("trainer.steps_per_epoch", trainer.steps_per_epoch)
    require_choice("trainer.precision", trainer.precision, choices.PRECISIONS)
    require_choice("trainer.monitor", trainer.monitor, choices.MONITORS)
    if trainer.verbose is not None:
        require_choice("trainer.verbose", trainer.verbose, (0, 1, 2))
    if not 0.0 <= trainer.label_smoothing < 1.0:
        raise ConfigError("trainer.label_smoothing", trainer.label_smoothing, "a fraction in [0, 1)")
    if trainer.early_stopping_patience is not None:
        require_positive("trainer.early_stopping_patience", trainer.early_stopping_patience)
    require_choice("trainer.distribution", trainer.distribution, choices.DISTRIBUTIONS)
    if not trainer.autotune_max_seconds > 0:
        raise ConfigError("trainer.autotune_max_seconds", trainer.autotune_max_seconds,
                          "a positive number of seconds (trainer.autotune=false turns probing off)")


def validate_bench_config(cfg: Any) -> None:
    """A benchmark composes the training groups, so it passes the training checks and its own."""
    validate_train_config(cfg, BenchAppConfig)
    bench = cfg.bench
    for key in ("steps", "warmup_steps", "repeats"):
        require_positive(f"bench.{key}", getattr(bench, key))
    require_choice("bench.format", bench.format, choices.BENCH_FORMATS)
    for name in bench.baselines:
        if name not in choices.BENCH_BASELINES:
            raise ConfigError("bench.baselines", list(bench.baselines),
                              "a list drawn from " + ", ".join(repr(b) for b in choices.BENCH_BASELINES))
