"""Optimizers, weight decay, learning-rate schedules and the loss, from their configs.

Schedules are stepped once per batch; config values in epochs are turned into steps here. The custom
schedules and the loss are registered with Keras, so a checkpoint that holds them reloads.
"""

from __future__ import annotations

import math
from typing import Any, List, Union

import keras
import numpy as np
from keras import ops

# Variables that never decay: BatchNorm scale and offset, and biases (their size carries no capacity).
NO_DECAY = ["gamma", "beta", "bias"]


@keras.saving.register_keras_serializable(package="resnet_lab")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``initial`` multiplied by ``gamma`` at each boundary step (He et al.: / 10 at 32k and 48k)."""

    def __init__(self, initial: float, boundaries: List[int], gamma: float) -> None:
        self.initial, self.boundaries, self.gamma = float(initial), [int(b) for b in boundaries], float(gamma)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        passed = sum((ops.cast(step >= b, "float32") for b in self.boundaries), ops.zeros((), "float32"))
        return self.initial * ops.power(self.gamma, passed)

    def get_config(self):
        return {"initial": self.initial, "boundaries": self.boundaries, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="resnet_lab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's one-cycle policy: cosine rise from peak / div_factor to the peak over ``pct_start`` of the
    run, then cosine fall to the start / final_div_factor at the last step."""

    def __init__(self, peak: float, total_steps: int, pct_start: float, div_factor: float,
                 final_div_factor: float) -> None:
        self.peak, self.total_steps, self.pct_start = float(peak), int(total_steps), float(pct_start)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)

    def __call__(self, step):
        start = self.peak / self.div_factor
        end = start / self.final_div_factor
        rise = max(1.0, round(self.pct_start * self.total_steps))
        fall = max(1.0, self.total_steps - rise)
        step = ops.cast(step, "float32")

        def anneal(high_at_0, low_at_1, t):
            t = ops.clip(t, 0.0, 1.0)
            return low_at_1 + (high_at_0 - low_at_1) * (1.0 + ops.cos(math.pi * t)) / 2.0

        rising = anneal(start, self.peak, step / rise)
        falling = anneal(self.peak, end, (step - rise) / fall)
        return ops.where(step < rise, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor}


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
    if schedule.name == "step":
        boundaries = [int(round(m * steps_per_epoch)) for m in schedule.milestones]
        return StepDecay(learning_rate, boundaries, schedule.gamma)
    if schedule.name in ("cosine", "warmup_cosine"):
        if warmup_steps == 0:
            return keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps=total_steps, alpha=schedule.min_lr_ratio)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup_steps), alpha=schedule.min_lr_ratio,
            warmup_target=learning_rate, warmup_steps=warmup_steps)
    if schedule.name == "one_cycle":
        return OneCycle(learning_rate, total_steps, schedule.pct_start, schedule.div_factor,
                        schedule.final_div_factor)
    raise ValueError(f"unknown schedule {schedule.name!r}")


def build_optimizer(optimizer: Any, learning_rate: Any) -> keras.optimizers.Optimizer:
    """The optimizer; with ``weight_decay_mode=decoupled`` it also decays the kernels itself. On TensorFlow outside
    a distribution strategy, each variable's update is one fused kernel (``fused_optimizers``): the same rule,
    traced in half the time."""
    from resnet_lab.training.fused_optimizers import FusedAdam, FusedSGD, fused_updates_apply

    fused = fused_updates_apply()
    common = {"learning_rate": learning_rate, "clipnorm": optimizer.clipnorm,
              "global_clipnorm": optimizer.global_clipnorm}
    decay = optimizer.weight_decay if optimizer.weight_decay_mode == "decoupled" else 0.0
    if optimizer.name == "sgd":
        sgd = FusedSGD if fused else keras.optimizers.SGD
        built = sgd(momentum=optimizer.momentum, nesterov=optimizer.nesterov, weight_decay=decay or None,
                    name="sgd", **common)
    elif optimizer.name == "adam":
        adam = FusedAdam if fused else keras.optimizers.Adam
        built = adam(beta_1=optimizer.beta_1, beta_2=optimizer.beta_2, weight_decay=decay or None, name="adam",
                     **common)
    elif optimizer.name == "adamw":  # Adam with decoupled decay, under Keras' name for it
        adam = FusedAdam if fused else keras.optimizers.AdamW
        built = adam(beta_1=optimizer.beta_1, beta_2=optimizer.beta_2, weight_decay=decay, name="adam_w", **common)
    else:
        raise ValueError(f"unknown optimizer {optimizer.name!r}")
    if decay:
        built.exclude_from_weight_decay(var_names=NO_DECAY)
    return built


def apply_l2(model: keras.Model, optimizer: Any) -> int:
    """With ``weight_decay_mode=l2``, add ``weight_decay / 2 * ||w||^2`` of every kernel to the loss.

    The half makes the gradient ``weight_decay * w``: what "weight decay 1e-4" means in He et al.
    (Caffe and Torch add it to the gradient). Returns how many kernels were regularized.
    """
    if optimizer.weight_decay_mode != "l2" or not optimizer.weight_decay:
        return 0
    kernels = [v for v in model.trainable_weights if v.name == "kernel"]
    for variable in kernels:
        variable.regularizer = keras.regularizers.L2(optimizer.weight_decay / 2.0)
    return len(kernels)


@keras.saving.register_keras_serializable(package="resnet_lab")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels, with label smoothing (Szegedy et al. 2016)."""

    def __init__(self, num_classes: int, label_smoothing: float, name: str = "smoothed_crossentropy",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.label_smoothing = int(num_classes), float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


def build_loss(num_classes: int, label_smoothing: float) -> keras.losses.Loss:
    if label_smoothing > 0:
        return SmoothedSparseCrossentropy(num_classes, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model: keras.Model, cfg: Any, num_classes: int, steps_per_epoch: int, precision: str,
                  jit_compile: Union[bool, str]) -> keras.Model:
    """Compile ``model`` as every training run does: L2 terms (``weight_decay_mode=l2``), the optimizer
    and schedule, loss scaling under float16, the (smoothed) cross-entropy on logits and accuracy.

    ``cfg`` is the whole run config (``optimizer``, ``schedule``, ``trainer``); training and the
    benchmark both compile through here, so the benchmark times the work a run does. ``jit_compile``
    is passed to Keras (``"auto"`` leaves XLA to Keras' own rule).
    """
    apply_l2(model, cfg.optimizer)
    schedule = build_schedule(cfg.schedule, cfg.optimizer.learning_rate, steps_per_epoch, cfg.trainer.epochs)
    optimizer = build_optimizer(cfg.optimizer, schedule)
    if precision == "mixed_fp16":  # float16 gradients underflow without dynamic loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=build_loss(num_classes, cfg.trainer.label_smoothing),
                  metrics=["accuracy"], jit_compile=jit_compile)
    build_training_state(model)
    return model


def build_training_state(model: keras.Model) -> None:
    """Create the optimizer's and the metrics' variables before the first step.

    On TensorFlow, Keras otherwise creates them while tracing the first training step, and a
    ``tf.function`` that creates variables is traced a second time: measured on a 2-core CPU, the
    first 2-epoch fit of a narrow ResNet-56 took 19.0-19.3 s that way and 9.2-10.5 s with the state
    built first. The other backends build it themselves before tracing.
    """
    if keras.backend.backend() != "tensorflow" or not getattr(model, "inputs", None):
        return  # a subclassed model (the seed's) knows its input only once called: Keras builds it then
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    symbolic_build = getattr(model, "_symbolic_build", None)  # Keras' own builder, private: skipped if it goes
    if symbolic_build is not None:
        images = np.zeros((1, *model.input_shape[1:]), "float32")  # shapes only: nothing is computed
        symbolic_build(data_batch=(images, np.zeros((1,), "int32")))
