"""Augmentation layers: what they do to images in training, and that inference leaves images alone."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.configs import compose_config

from resnet_lab.data.augment import Cutout, RandomPadCrop, augmentation_layers, with_augmentation


def images(n=16, size=8, channels=3):
    return np.arange(n * size * size * channels, dtype="float32").reshape(n, size, size, channels) + 1.0


def test_pad_crop_shifts_each_image_within_the_padding():
    x = images()
    out = keras.ops.convert_to_numpy(RandomPadCrop(2, seed=1)(x, training=True))
    assert out.shape == x.shape
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])
    offsets = set()
    for i in range(len(x)):  # each output is one 8x8 window of its padded image
        found = [(t, l) for t in range(5) for l in range(5) if np.array_equal(padded[i, t:t + 8, l:l + 8], out[i])]
        assert found, i
        offsets.add(found[0])
    assert len(offsets) > 3  # windows differ between images
    np.testing.assert_array_equal(RandomPadCrop(2)(x, training=False), x)


def test_cutout_zeroes_one_square_per_image_and_only_in_training():
    x = images(n=32)
    out = keras.ops.convert_to_numpy(Cutout(4, seed=3)(x, training=True))
    zeroed = (out == 0).all(axis=-1)
    counts = zeroed.reshape(len(x), -1).sum(axis=1)
    assert counts.max() == 16 and counts.min() >= 4  # a full 4x4 square, or one clipped at a border
    for i in range(len(x)):
        rows, cols = np.nonzero(zeroed[i])
        assert rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4
    np.testing.assert_array_equal(out[~zeroed], x[~zeroed])
    np.testing.assert_array_equal(Cutout(4)(x, training=False), x)


def test_configs_turn_augmentation_on_for_cifar_and_off_for_digits():
    assert augmentation_layers(compose_config("train").data.augment) == []
    cifar = [type(layer).__name__ for layer in augmentation_layers(compose_config("train", ["data=cifar10"]).data.augment)]
    assert cifar == ["RandomPadCrop", "RandomFlip"]
    everything = compose_config("train", ["data=cifar100", "data.augment.cutout=8"]).data.augment
    assert [type(layer).__name__ for layer in augmentation_layers(everything)][-1] == "Cutout"


def test_the_wrapped_model_predicts_like_the_network_at_inference():
    inputs = keras.Input((8, 8, 3))
    network = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)), name="net")
    augment = compose_config("train", ["data=cifar10", "data.augment.cutout=2"]).data.augment
    wrapped = with_augmentation(network, augment)
    x = images(4)
    np.testing.assert_allclose(wrapped.predict(x, verbose=0), network.predict(x, verbose=0), rtol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(wrapped(x, training=True)), network.predict(x, verbose=0))
    assert with_augmentation(network, compose_config("train").data.augment) is network


@pytest.mark.parametrize("key, value", [("crop_padding", -1), ("cutout", -2)])
def test_negative_augmentation_sizes_are_refused(key, value):
    from resnet_lab.config.validation import validate_train_config
    from resnet_lab.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"data\.augment\.{key}={value} is not allowed: zero \(off\)"):
        validate_train_config(compose_config("train", [f"data.augment.{key}={value}"]))
