"""Optimizers and learning-rate schedules from their configs."""

from __future__ import annotations

from typing import Any, Union

import keras


def build_schedule(schedule: Any, learning_rate: float, steps_per_epoch: int, epochs: int
                   ) -> Union[float, keras.optimizers.schedules.LearningRateSchedule]:
    """A float for a constant rate, else a Keras schedule stepped once per batch."""
    warmup_steps = int(round(schedule.warmup_epochs * steps_per_epoch))
    total_steps = max(1, steps_per_epoch * epochs)
    if schedule.name == "constant":
        if warmup_steps == 0:
            return float(learning_rate)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=learning_rate, warmup_steps=warmup_steps)
    if schedule.name == "cosine":
        if warmup_steps == 0:
            return keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps=total_steps, alpha=schedule.min_lr_ratio)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup_steps), alpha=schedule.min_lr_ratio,
            warmup_target=learning_rate, warmup_steps=warmup_steps)
    raise ValueError(f"unknown schedule {schedule.name!r}")


def build_optimizer(optimizer: Any, learning_rate: Any) -> keras.optimizers.Optimizer:
    common = {"learning_rate": learning_rate, "clipnorm": optimizer.clipnorm}
    decay = optimizer.weight_decay or None
    if optimizer.name == "sgd":
        return keras.optimizers.SGD(momentum=optimizer.momentum, nesterov=optimizer.nesterov,
                                    weight_decay=decay, **common)
    if optimizer.name == "adam":
        return keras.optimizers.Adam(beta_1=optimizer.beta_1, beta_2=optimizer.beta_2,
                                     weight_decay=decay, **common)
    if optimizer.name == "adamw":
        return keras.optimizers.AdamW(beta_1=optimizer.beta_1, beta_2=optimizer.beta_2,
                                      weight_decay=optimizer.weight_decay, **common)
    raise ValueError(f"unknown optimizer {optimizer.name!r}")
