"""The network's input layer: raw images in, standardized by fixed statistics that add no weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.configs import model_spec

from resnet_lab.model.analysis import analyze
from resnet_lab.model.builder import build_model
from resnet_lab.model.inputs import INPUT_NORMALIZE, InputNormalization, expected_input, normalization_of

STATS = InputNormalization.of([120.0, 110.0, 100.0], [60.0, 55.0, 50.0])  # a uint8 RGB set's, roughly


def small(*overrides):
    return model_spec("model=cifar_resnet20", "model.layer_dims=[1,1,1]", "model.width_multiplier=0.25", *overrides)


def raw_images(n=4, shape=(16, 16, 3)):
    return np.random.default_rng(0).integers(0, 256, size=(n, *shape)).astype("float32")


def test_the_input_layer_adds_no_weights_and_standardizes_what_the_data_set_stores():
    plain = build_model(small(), (16, 16, 3), 5)
    normalizing = build_model(small(), (16, 16, 3), 5, normalization=STATS)
    assert normalizing.layers[1].name == INPUT_NORMALIZE
    assert normalizing.count_params() == plain.count_params()
    assert len(normalizing.weights) == len(plain.weights)
    assert len(normalizing.non_trainable_weights) == len(plain.non_trainable_weights)  # no mean/variance variables
    assert normalizing.get_layer(INPUT_NORMALIZE).weights == []
    # What a run reports of its network (arch.*) is what describe and the zoo report without the layer.
    with_layer, without = analyze(normalizing), analyze(plain)
    assert (with_layer.depth, with_layer.flops, with_layer.activation_bytes, with_layer.params_total) == \
        (without.depth, without.flops, without.activation_bytes, without.params_total)

    normalizing.set_weights(plain.get_weights())  # weight lists line up one to one
    x = raw_images()
    standardized = (x - np.array(STATS.mean, "float32")) / np.array(STATS.std, "float32")
    np.testing.assert_allclose(normalizing.predict(x, verbose=0), plain.predict(standardized, verbose=0),
                               rtol=1e-5, atol=1e-5)
    # uint8 arrays, as CIFAR is held in memory, give the same logits: the float32 input casts them.
    np.testing.assert_allclose(normalizing.predict(x.astype("uint8"), verbose=0), normalizing.predict(x, verbose=0))


def test_the_saved_network_keeps_its_statistics_and_says_what_it_takes(tmp_path):
    network = build_model(small(), (16, 16, 3), 5, normalization=STATS)
    network.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(normalization_of(again).mean, STATS.mean, rtol=1e-12)
    np.testing.assert_allclose(normalization_of(again).std, STATS.std, rtol=1e-6)
    x = raw_images()
    np.testing.assert_allclose(again.predict(x, verbose=0), network.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    assert expected_input(again).startswith("images as the data set stores them")
    # A network built without statistics (describe, the zoo, one saved before raw inputs) takes preprocessed
    # images, and says so.
    plain = build_model(small(), (16, 16, 3), 5)
    assert normalization_of(plain) is None and expected_input(plain).startswith("preprocessed images")


def test_the_input_layer_computes_in_float32_under_mixed_precision():
    network = build_model(small(), (16, 16, 3), 5, precision="mixed_bf16", normalization=STATS)
    layer = network.get_layer(INPUT_NORMALIZE)
    assert layer.compute_dtype == "float32"  # 0..255 values lose no precision before the mean is taken off
    assert network.get_layer("stem_conv").compute_dtype == "bfloat16"


def test_statistics_must_match_the_channels_and_have_no_zero_sd():
    with pytest.raises(ValueError, match=r"the input normalization has 3 channels but the images \[8, 8, 1\] have 1"):
        build_model(small(), (8, 8, 1), 5, normalization=STATS)
    with pytest.raises(ValueError, match="every channel's sd must be positive"):
        InputNormalization.of([1.0], [0.0])


def test_keras_presets_still_take_keras_applications_weights_with_an_input_layer():
    """keras.applications' weights transfer by order; the input layer has none, so a keras_* network that
    normalizes its input takes them too (the published counts are checked without it, tests/model)."""
    spec = model_spec("model=keras_resnet50v2", "model.layer_dims=[1,1,1,1]")
    plain = build_model(spec, (32, 32, 3), 10)
    normalizing = build_model(spec, (32, 32, 3), 10, normalization=STATS)
    assert normalizing.count_params() == plain.count_params()
    normalizing.set_weights(plain.get_weights())
