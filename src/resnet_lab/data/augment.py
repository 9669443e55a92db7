"""Training-time augmentation as Keras layers written with ``keras.ops`` only, so it runs on any backend
and on the accelerator: random crop with zero padding, horizontal flip, cutout.

The layers change images only when called with ``training=True``; at inference they pass them through.
"""

from __future__ import annotations

from typing import Any, List, Optional

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="resnet_lab")
class RandomPadCrop(keras.layers.Layer):
    """Pad each side with ``padding`` zeros, then crop a random window of the original size per image."""

    def __init__(self, padding: int, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding, self.seed = padding, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.padding == 0:
            return images
        p = self.padding
        batch = ops.shape(images)[0]
        height, width, channels = images.shape[1], images.shape[2], images.shape[3]
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        top = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        left = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        rows = top + ops.expand_dims(ops.arange(height, dtype="int32"), 0)  # (batch, height)
        cols = left + ops.expand_dims(ops.arange(width, dtype="int32"), 0)  # (batch, width)
        rows = ops.broadcast_to(ops.reshape(rows, (batch, height, 1, 1)), (batch, height, width + 2 * p, channels))
        picked = ops.take_along_axis(padded, rows, axis=1)
        cols = ops.broadcast_to(ops.reshape(cols, (batch, 1, width, 1)), (batch, height, width, channels))
        return ops.take_along_axis(picked, cols, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}


@keras.saving.register_keras_serializable(package="resnet_lab")
class Cutout(keras.layers.Layer):
    """Zero one random ``size`` x ``size`` square per image (clipped at the borders; DeVries & Taylor 2017)."""

    def __init__(self, size: int, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size, self.seed = size, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.size == 0:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        cy = keras.random.randint((batch, 1, 1, 1), 0, height, seed=self.seed_generator)
        cx = keras.random.randint((batch, 1, 1, 1), 0, width, seed=self.seed_generator)
        rows = ops.reshape(ops.arange(height, dtype="int32"), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="int32"), (1, 1, width, 1))
        half = self.size // 2
        inside = ops.logical_and(
            ops.logical_and(rows >= cy - half, rows < cy - half + self.size),
            ops.logical_and(cols >= cx - half, cols < cx - half + self.size),
        )
        return images * ops.cast(ops.logical_not(inside), images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


def augmentation_layers(augment: Any) -> List[keras.layers.Layer]:
    """The layers ``data.augment`` asks for, in the order they apply."""
    found: List[keras.layers.Layer] = []
    if augment.crop_padding > 0:
        found.append(RandomPadCrop(augment.crop_padding, name="augment_crop"))
    if augment.flip:
        found.append(keras.layers.RandomFlip("horizontal", name="augment_flip"))
    if augment.cutout > 0:
        found.append(Cutout(augment.cutout, name="augment_cutout"))
    return found


def with_augmentation(model: keras.Model, augment: Any, after: Optional[str] = None) -> keras.Model:
    """``model`` with the augmentation layers in front of it (the same model when there are none).

    ``after`` names a layer at the model's input that comes before augmentation (the network's input
    normalization, ``model/inputs.py``): augmentation then works on standardized images, so padding and
    cutout fill with zeros, the channel mean, as they did when the data pipeline standardized. The
    model's own layers, weights and names are shared, not copied: training it trains ``model``, which is
    saved on its own for inference.
    """
    layers = augmentation_layers(augment)
    if not layers:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x, rest = inputs, model
    if after is not None and after in {layer.name for layer in model.layers}:
        first = model.get_layer(after)
        x = first(x)
        # The layers behind ``first``, as one model over its output (Keras clones only the input node).
        rest = keras.Model(first.output, model.output, name=f"{model.name}_body")
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, rest(x), name=f"{model.name}_training")
