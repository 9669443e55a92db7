"""The ResNet of the blog post this project grew from, as the post writes it: a subclassed Keras model with nested
``Sequential`` stages. (The presets ``seed_resnet18/34`` are named after that post, the project's seed; nothing
here has to do with the random ``seed``.)

Kept for two jobs: the test suite checks that the generic builder's ``seed_resnet18/34`` presets are
exactly this network (same parameters, same predictions once weights are shared), and the
benchmark uses it as the baseline the functional models are measured against.
"""

from __future__ import annotations

from typing import List, Sequence

import keras
from keras import Sequential, layers


class BlogPostBasicBlock(layers.Layer):
    def __init__(self, filters: int, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = layers.Conv2D(filters, (3, 3), strides=stride, padding="same")
        self.bn1 = layers.BatchNormalization()
        self.relu = layers.Activation("relu")
        self.conv2 = layers.Conv2D(filters, (3, 3), strides=1, padding="same")
        self.bn2 = layers.BatchNormalization()
        self.downsample = Sequential([layers.Conv2D(filters, (1, 1), strides=stride)]) if stride != 1 else None

    def call(self, inputs, training=None):
        out = self.relu(self.bn1(self.conv1(inputs), training=training))
        out = self.bn2(self.conv2(out), training=training)
        identity = inputs if self.downsample is None else self.downsample(inputs)
        return keras.ops.relu(layers.add([out, identity]))


class BlogPostResNet(keras.Model):
    def __init__(self, layer_dims: Sequence[int], num_classes: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.stem = Sequential([
            layers.Conv2D(64, (3, 3), strides=(1, 1)),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPool2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
        ])
        self.stages = [
            self._stage(filters, blocks, stride)
            for filters, blocks, stride in zip((64, 128, 256, 512), layer_dims, (1, 2, 2, 2))
        ]
        self.avgpool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(num_classes)

    @staticmethod
    def _stage(filters: int, blocks: int, stride: int) -> Sequential:
        return Sequential([BlogPostBasicBlock(filters, stride)] + [BlogPostBasicBlock(filters, 1) for _ in range(1, blocks)])

    def call(self, inputs, training=None):
        x = self.stem(inputs, training=training)
        for stage in self.stages:
            x = stage(x, training=training)
        return self.fc(self.avgpool(x))


def blog_post_resnet(layer_dims: Sequence[int], input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10) -> BlogPostResNet:
    model = BlogPostResNet(layer_dims, num_classes)
    model(keras.ops.zeros((1, *input_shape)))  # a subclassed model creates its weights on first call
    return model


def weights_in_blog_post_order(model: keras.Model) -> List[keras.Variable]:
    """The builder's weights listed in the order the blog post's subclassed model holds them.

    Stem conv and BN, then per block conv1, bn1, conv2, bn2 and the shortcut conv, then the head:
    the mapping that lets a test copy weights across and compare predictions.
    """
    ordered: List[keras.Variable] = []
    names = ["stem_conv", "stem_bn"]
    stage = 1
    while any(layer.name.startswith(f"stage{stage}_") for layer in model.layers):
        block = 1
        while any(layer.name.startswith(f"stage{stage}_block{block}_") for layer in model.layers):
            prefix = f"stage{stage}_block{block}"
            names += [f"{prefix}_conv1", f"{prefix}_bn1", f"{prefix}_conv2", f"{prefix}_bn2"]
            if any(layer.name == f"{prefix}_shortcut_conv" for layer in model.layers):
                names.append(f"{prefix}_shortcut_conv")
            block += 1
        stage += 1
    names.append("head_logits")
    for name in names:
        ordered += model.get_layer(name).weights
    return ordered
