"""Testing a run's model: one prediction pass of one batch shape, and from its logits the loss and accuracy
``evaluate`` reports."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.configs import compose_config
from omegaconf import OmegaConf

from resnet_lab.data import load_splits
from resnet_lab.data.feeding import feed, inference_batch_size, predict_in_full_batches, training_feed
from resnet_lab.runtime.machine import keras_backend
from resnet_lab.training.build import Recipe
from resnet_lab.training.callbacks import EpochLogger
from resnet_lab.training.evaluation import loss_and_accuracy
from resnet_lab.training.steps import validation

# Every term of the test loss: the smoothed cross-entropy and the L2 terms of the kernels.
OVERRIDES = ["debug=tiny", "data.test_size=45", "optimizer=sgd", "optimizer.weight_decay=0.01",
             "optimizer.weight_decay_mode=l2", "trainer.label_smoothing=0.1"]


def compiled():
    cfg = compose_config("train", OVERRIDES)
    splits = load_splits(cfg.data)
    recipe = Recipe.of(cfg, OmegaConf.to_object(cfg.model), splits.image_shape, splits.num_classes, 3, splits=splits)
    return recipe.build("fp32", False).model, splits


@pytest.fixture(scope="module")
def trained():
    model, splits = compiled()
    model.fit(**training_feed(splits.x_train, splits.y_train, 32, seed=1), epochs=1, steps_per_epoch=3, verbose=0)
    return model, splits


def test_the_loss_and_accuracy_from_the_logits_are_what_evaluate_reports(trained):
    model, splits = trained
    logits = predict_in_full_batches(model, splits.x_test, 32)
    loss, accuracy = loss_and_accuracy(model, splits.y_test, logits)
    reported_loss, reported_accuracy = model.evaluate(**feed(splits.x_test, splits.y_test, 32), verbose=0)
    regularization = float(sum(np.asarray(term) for term in model.losses))
    assert regularization > 1e-3 * loss  # the L2 terms are part of what is compared
    assert loss == pytest.approx(reported_loss, rel=1e-5)
    assert accuracy == pytest.approx(reported_accuracy, abs=1e-6)
    assert 0 < accuracy < 1  # right and wrong images both counted


def test_splits_of_any_size_are_predicted_through_one_trace(trained):
    model, splits = trained
    assert len(splits.x_test) % 32 and len(splits.x_val) != len(splits.x_test)  # a short batch; another size
    model.predict_function = None
    logits = predict_in_full_batches(model, splits.x_test, 32)
    assert logits.shape == (45, splits.num_classes)
    plain = model.predict(**feed(splits.x_test, None, 32), verbose=0)  # Keras' own batches, the short one too
    np.testing.assert_allclose(logits, plain, rtol=1e-5, atol=1e-6)
    if keras_backend() == "tensorflow":
        model.predict_function = None
        predict_in_full_batches(model, splits.x_val, 32)  # validation, then testing: as a run predicts
        predict_in_full_batches(model, splits.x_test, 32)
        assert model.predict_function.experimental_get_tracing_count() == 1
        model.predict_function = None
        model.predict(**feed(splits.x_test, None, 32), verbose=0)
        assert model.predict_function.experimental_get_tracing_count() == 2  # the short batch: traced again


@pytest.mark.parametrize("batch_size, validation_images, expected", [
    (64, 180, 192),  # digits: the validation split in one batch of three training batches
    (64, 64, 64), (64, 10, 64),
    (128, 5000, 512),  # CIFAR's 5,000: at most four training batches
    (32, 0, 32),  # no validation split: the training batch
])
def test_the_inference_batch_holds_the_validation_split_up_to_four_training_batches(batch_size, validation_images,
                                                                                    expected):
    assert inference_batch_size(batch_size, validation_images) == expected


def test_each_epoch_is_validated_through_predict_and_the_progress_line_shows_it(capsys):
    model, splits = compiled()
    history = model.fit(**training_feed(splits.x_train, splits.y_train, 32, seed=1), epochs=2, verbose=2,
                        callbacks=[EpochLogger(None, validate=validation(splits.x_val, splits.y_val, 32))])
    assert sorted(k for k in history.history if k.startswith("val_")) == ["val_accuracy", "val_loss"]
    assert len(history.history["val_loss"]) == 2
    assert model.test_function is None  # only the predict function was made
    reported_loss, reported_accuracy = model.evaluate(**feed(splits.x_val, splits.y_val, 32), verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(reported_loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(reported_accuracy, abs=1e-6)
    epoch_lines = [line for line in capsys.readouterr().out.splitlines() if " - loss: " in line]
    assert len(epoch_lines) == 2 and all("val_accuracy: " in line and "val_loss: " in line for line in epoch_lines)
