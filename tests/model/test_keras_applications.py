"""keras_* presets are weight-compatible with keras.applications: same weights in, same predictions out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_lab.model.builder import build_model
from resnet_lab.zoo import preset_spec

FAMILIES = {
    "keras_resnet50": "ResNet50",
    "keras_resnet50v2": "ResNet50V2",
    "keras_resnet101": "ResNet101",
    "keras_resnet101v2": "ResNet101V2",
    "keras_resnet152": "ResNet152",
    "keras_resnet152v2": "ResNet152V2",
}
SLOW = {"keras_resnet101", "keras_resnet101v2", "keras_resnet152", "keras_resnet152v2"}


@pytest.mark.parametrize("preset", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in FAMILIES])
def test_weights_transfer_by_order_and_predictions_match(preset):
    shape = (64, 64, 3)  # small input: the same weights, a fraction of the compute
    reference = getattr(keras.applications, FAMILIES[preset])(weights=None, input_shape=shape,
                                                              classifier_activation=None)
    ours = build_model(preset_spec(preset), shape, 1000)
    ours.set_weights(reference.get_weights())  # what a user does with the ImageNet weights file
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), reference(x, training=False), rtol=1e-4, atol=1e-4)
