"""Training on raw images: normalize -> augment -> network, one set of weights, and checkpoints from before.

The network standardizes its input itself (``model/inputs.py``); augmentation goes between that layer and
the rest, so padding and cutout fill with the channel mean (zero once standardized), as when the data
pipeline standardized, and checkpoints written before the change load and mean the same.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.archives import UNOFFICIAL, write_cifar
from helpers.configs import compose_config
from omegaconf import OmegaConf

from resnet_lab.data import load_splits
from resnet_lab.data.augment import with_augmentation
from resnet_lab.model.inputs import INPUT_NORMALIZE, InputNormalization, normalization_of
from resnet_lab.train import train
from resnet_lab.training.build import Recipe
from resnet_lab.training.checkpoints import load_variables, save_variables, training_variables

SMALL = ["model.layer_dims=[1,1,1]", "model.width_multiplier=0.25", "trainer.jit_compile=false"]


def test_padding_and_cutout_fill_with_the_channel_mean():
    mean, std = 100.0, 50.0
    inputs = keras.Input((8, 8, 3), name="image")
    x = InputNormalization.of([mean] * 3, [std] * 3).layer()(inputs)
    network = keras.Model(inputs, keras.layers.Activation("linear", name="probe")(x), name="net")
    augment = compose_config("train", ["data=cifar10", "data.augment.crop_padding=3",
                                       "data.augment.cutout=4"]).data.augment
    wrapped = with_augmentation(network, augment, after=INPUT_NORMALIZE)
    raw = np.full((32, 8, 8, 3), 2 * mean, "float32")  # standardized: 2.0 everywhere
    out = keras.ops.convert_to_numpy(wrapped(raw, training=True))
    # Filled pixels are the channel mean (0.0 standardized); raw zeros would have become -2.0.
    assert set(np.unique(out)) == {0.0, 2.0}
    np.testing.assert_array_equal(wrapped.predict(raw, verbose=0), np.full_like(raw, 2.0))  # inference: untouched


def built(cfg, splits=None):
    spec = OmegaConf.to_object(cfg.model)
    recipe = Recipe.of(cfg, spec, (8, 8, 1), 10, steps_per_epoch=4, splits=splits)
    compiled = recipe.build("fp32", False)
    compiled.model.optimizer.build(compiled.model.trainable_variables)
    return compiled


def test_the_training_model_trains_the_networks_own_weights_in_checkpoint_order():
    cfg = compose_config("train", [*SMALL, "data.augment.crop_padding=2", "data.augment.cutout=2"])
    compiled = built(cfg, load_splits(cfg.data))
    assert compiled.model is not compiled.network
    assert [v.path for v in compiled.model.weights] == [v.path for v in compiled.network.weights]
    assert all(a is b for a, b in zip(compiled.model.weights, compiled.network.weights))


@pytest.mark.parametrize("augment", [[], ["data.augment.crop_padding=2", "data.augment.flip=true"]])
def test_a_checkpoint_from_before_raw_inputs_loads_and_predicts_the_same(tmp_path, augment):
    """Before raw inputs the network had no input layer and was fed standardized images; its checkpoint
    (weights, BN statistics, optimizer state) loads into today's model, which standardizes by itself with
    the same training statistics, so a resumed run goes on where it stopped."""
    cfg = compose_config("train", [*SMALL, *augment])
    splits = load_splits(cfg.data)
    old, new = built(cfg), built(cfg, splits)  # old: as the code before raw inputs built it
    rng = np.random.default_rng(0)
    for variable in training_variables(old.model):  # a trained state, not the initial one
        if "float" in str(variable.dtype):
            variable.assign(rng.normal(size=variable.shape).astype(str(variable.dtype)) * 0.1 + 0.5)
    save_variables(tmp_path / "epoch-0003.npz", training_variables(old.model))

    load_variables(tmp_path / "epoch-0003.npz", training_variables(new.model))
    raw = splits.x_test[:16]
    standardized = ((raw - np.array(splits.channel_mean)) / np.array(splits.channel_std)).astype("float32")
    np.testing.assert_allclose(new.network.predict(raw, verbose=0), old.network.predict(standardized, verbose=0),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("normalize", [True, False])
def test_uint8_cifar_trains_with_augmentation_and_its_model_takes_the_stored_pixels(tmp_path, normalize):
    """CIFAR stays uint8 in memory and in the input pipeline; the saved network carries the training
    split's statistics (with data.normalize=false: 0 and 255, a plain scaling to 0..1) and gives the same
    logits for the uint8 pixels as for them in float32."""
    write_cifar(tmp_path, "cifar10")
    overrides = ["debug=tiny", "data=cifar10", f"data.path={tmp_path}", "data.image_shape=[32,32,3]",
                 "data.num_classes=10", "data.augment.cutout=8", UNOFFICIAL, "trainer.epochs=1", "trainer.verbose=0",
                 "tracking.enabled=false", f"data.normalize={str(normalize).lower()}"]
    cfg = compose_config("train", overrides)
    metrics = train(cfg, output_dir=tmp_path / "out")
    assert np.isfinite(metrics["loss"])
    splits = load_splits(cfg.data)
    assert splits.x_train.dtype == np.uint8
    if not normalize:
        assert splits.channel_mean == (0.0,) * 3 and splits.channel_std == (255.0,) * 3
    network = keras.saving.load_model(tmp_path / "out" / "model.keras")
    np.testing.assert_allclose(normalization_of(network).mean, splits.channel_mean, rtol=1e-12)
    np.testing.assert_allclose(normalization_of(network).std, splits.channel_std, rtol=1e-6)
    np.testing.assert_allclose(network.predict(splits.x_test, verbose=0),
                               network.predict(splits.x_test.astype("float32"), verbose=0), rtol=1e-6, atol=1e-6)
