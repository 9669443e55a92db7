"""Schedules, weight decay and label smoothing, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers.configs import compose_config

from resnet_lab.config.validation import validate_train_config
from resnet_lab.errors import ConfigError
from resnet_lab.training.optim import SmoothedSparseCrossentropy, apply_l2, build_optimizer, build_schedule


def rates(overrides, lr=0.1, steps_per_epoch=10, epochs=10, at=()):
    cfg = compose_config("train", overrides)
    schedule = build_schedule(cfg.schedule, lr, steps_per_epoch, epochs)
    return [float(schedule(s)) if callable(schedule) else schedule for s in at]


def test_step_schedule_divides_at_the_milestones_in_epochs():
    got = rates(["schedule=step", "schedule.milestones=[2,3.5]"], at=[0, 19, 20, 34, 35, 99])
    assert got == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_one_cycle_rises_to_the_peak_then_falls_far_below_the_start():
    start, peak_step, mid_fall, end = rates(["schedule=one_cycle"], at=[0, 30, 65, 100])
    assert start == pytest.approx(0.1 / 25) and peak_step == pytest.approx(0.1)
    assert mid_fall == pytest.approx((0.1 + 0.1 / 25 / 1e4) / 2, rel=1e-4)
    assert end == pytest.approx(0.1 / 25 / 1e4, rel=1e-3)


def test_warmup_cosine_climbs_linearly_then_decays():
    got = rates(["schedule=warmup_cosine", "schedule.warmup_epochs=2"], at=[0, 10, 20, 60, 100])
    assert got[:3] == pytest.approx([0.0, 0.05, 0.1])
    assert got[3] == pytest.approx(0.1 * (1 + math.cos(math.pi * 40 / 80)) / 2)
    assert got[4] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("overrides, match", [
    (["schedule=step", "schedule.milestones=[5,3]"], r"schedule\.milestones=\[5\.0, 3\.0\] is not allowed: increasing"),
    (["schedule=one_cycle", "schedule.warmup_epochs=1"], r"schedule\.warmup_epochs=1\.0 is not allowed: 0 with"),
    (["optimizer.weight_decay_mode=l1"], r"optimizer\.weight_decay_mode='l1' is not allowed: one of 'decoupled', 'l2'"),
    (["trainer.label_smoothing=1.0"], r"trainer\.label_smoothing=1\.0 is not allowed"),
    (["trainer.distribution=tpu_pod"], r"trainer\.distribution='tpu_pod' is not allowed: one of 'none'"),
    (["trainer.resume=true", "tracking.enabled=false"], r"trainer\.resume=True is not allowed: false while"),
])
def test_bad_training_options_are_one_line_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate_train_config(compose_config("train", overrides))


def small_model():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def test_l2_mode_adds_half_decay_times_squared_kernels_to_the_loss():
    cfg = compose_config("train", ["optimizer=sgd", "optimizer.weight_decay=1e-2", "optimizer.weight_decay_mode=l2"])
    model = small_model()
    assert apply_l2(model, cfg.optimizer) == 2  # conv and dense kernels; BN and biases are exempt
    expected = sum(0.5e-2 * float(np.sum(np.square(v.numpy()))) for v in model.trainable_weights if v.name == "kernel")
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    assert build_optimizer(cfg.optimizer, 0.1).weight_decay is None  # not also decoupled


def test_decoupled_decay_shrinks_kernels_but_not_batchnorm():
    cfg = compose_config("train", ["optimizer=sgd", "optimizer.momentum=0", "optimizer.weight_decay=0.5"])
    model = small_model()
    optimizer = build_optimizer(cfg.optimizer, 0.1)
    optimizer.build(model.trainable_weights)
    before = {v.path: v.numpy().copy() for v in model.trainable_weights}
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_weights])
    for v in model.trainable_weights:
        factor = 1 - 0.1 * 0.5 if v.name == "kernel" else 1.0
        np.testing.assert_allclose(v.numpy(), before[v.path] * factor, rtol=1e-6, err_msg=v.path)


def test_label_smoothing_spreads_the_target_over_all_classes():
    logits = np.array([[2.0, 0.0, -1.0]], "float32")
    probs = np.exp(logits) / np.exp(logits).sum()
    target = np.array([0.1 / 3 + 0.9, 0.1 / 3, 0.1 / 3])
    loss = SmoothedSparseCrossentropy(3, 0.1)(np.array([0]), logits)
    assert float(loss) == pytest.approx(-(target * np.log(probs)).sum(), rel=1e-5)


def keras_own(group, **options):
    """Keras' own optimizer for a config's ``optimizer`` group: what the fused ones must compute."""
    own = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}[group]
    return own(**options)


@pytest.mark.parametrize("overrides", [
    ["optimizer=adam"],
    ["optimizer=adamw"],
    ["optimizer=sgd"],
    ["optimizer=sgd", "optimizer.nesterov=true", "optimizer.weight_decay=0.01"],
    ["optimizer=sgd", "optimizer.momentum=0"],
])
def test_fused_optimizers_update_as_keras_own_do_and_hold_the_same_variables(overrides):
    import tensorflow as tf

    from resnet_lab.training.fused_optimizers import FusedAdam, FusedSGD

    cfg = compose_config("train", overrides)
    schedule = build_schedule(cfg.schedule, cfg.optimizer.learning_rate, 2, 3)
    fused = build_optimizer(cfg.optimizer, schedule)
    assert isinstance(fused, FusedSGD if cfg.optimizer.name == "sgd" else FusedAdam)
    config = {k: v for k, v in fused.get_config().items() if k != "learning_rate"}
    own = keras_own(cfg.optimizer.name, learning_rate=build_schedule(cfg.schedule, cfg.optimizer.learning_rate, 2, 3),
                    **config)
    if own.weight_decay:
        own.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    models = []
    for optimizer in (fused, own):
        keras.utils.set_random_seed(3)
        model = small_model()
        optimizer.build(model.trainable_variables)
        models.append(model)
    rng = np.random.default_rng(0)
    steps = [tf.function(lambda grads, o=optimizer, m=model: o.apply(grads, m.trainable_variables))
             for optimizer, model in zip((fused, own), models)]
    for _ in range(3):  # traced, as fit runs it, and once eagerly
        grads = [rng.normal(size=v.shape).astype("float32") for v in models[0].trainable_variables]
        for step in steps:
            step(grads)
    grads = [rng.normal(size=v.shape).astype("float32") for v in models[0].trainable_variables]
    for optimizer, model in zip((fused, own), models):
        optimizer.apply(grads, model.trainable_variables)
    assert [v.path for v in fused.variables] == [v.path for v in own.variables]
    # The point of them: far fewer ops for the trace to build (the step's scalars once, a kernel per variable).
    fused_ops, own_ops = (len(step.get_concrete_function(grads).graph.get_operations()) for step in steps)
    assert fused_ops < (0.5 if cfg.optimizer.name.startswith("adam") else 1.0) * own_ops, (fused_ops, own_ops)
    for mine, theirs in zip([*models[0].trainable_variables, *fused.variables],
                            [*models[1].trainable_variables, *own.variables]):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6, err_msg=mine.path)  # float rounding
