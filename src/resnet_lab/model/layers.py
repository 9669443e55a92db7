"""Layer helpers shared by stems and blocks, and the few custom layers the zoo needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import keras
from keras import layers


@dataclass(frozen=True)
class LayerStyle:
    """What every conv and BN layer of one model shares."""

    conv_bias: bool
    bias_without_norm: bool  # give a bias to convs that no BN follows
    padding: str  # strided convs: "same" or "symmetric"
    bn_epsilon: float
    bn_momentum: float
    kernel_initializer: str
    dtype: Any = None  # a Keras dtype policy name, e.g. "mixed_bfloat16"

    def conv(self, x, filters: int, kernel: int, stride: int, name: str, padding: Optional[str] = None,
             groups: int = 1, normalized: bool = True):
        """A conv; ``normalized`` says whether a BN follows (which decides its bias)."""
        if padding is None:
            padding = "symmetric" if self.padding == "symmetric" and stride > 1 else "same"
        if padding == "symmetric" and kernel > 1:
            x = layers.ZeroPadding2D(kernel // 2, dtype=self.dtype, name=f"{name}_pad")(x)
            padding = "valid"
        elif padding == "symmetric":
            padding = "valid"
        return layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, groups=groups,
            use_bias=self.conv_bias or (self.bias_without_norm and not normalized),
            kernel_initializer=self.kernel_initializer, dtype=self.dtype, name=name,
        )(x)

    def norm(self, x, name: str, zero_gamma: bool = False):
        return layers.BatchNormalization(
            epsilon=self.bn_epsilon, momentum=self.bn_momentum, dtype=self.dtype, name=name,
            gamma_initializer="zeros" if zero_gamma else "ones",
        )(x)

    def relu(self, x, name: str):
        return layers.ReLU(dtype=self.dtype, name=name)(x)

    def max_pool(self, x, size: int, stride: int, padding: str, name: str):
        if padding == "symmetric":
            x = layers.ZeroPadding2D(size // 2, dtype=self.dtype, name=f"{name}_pad")(x)
            padding = "valid"
        return layers.MaxPooling2D(size, strides=stride, padding=padding, dtype=self.dtype, name=name)(x)


@keras.saving.register_keras_serializable(package="resnet_lab")
class ChannelPad(layers.Layer):
    """Zero-pads the channel axis up to ``channels``: He et al.'s parameter-free option A shortcut."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, x):
        extra = self.channels - x.shape[-1]
        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="resnet_lab")
class DropPath(layers.Layer):
    """Stochastic depth: in training, drop a sample's whole residual branch with probability ``rate``."""

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = keras.ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def squeeze_excite(x, ratio: float, divisor: int, prefix: str, style: LayerStyle):
    """Squeeze-and-excitation (Hu et al.): channel gates from globally pooled features."""
    channels = x.shape[-1]
    squeezed = make_divisible(channels * ratio, divisor)
    s = layers.GlobalAveragePooling2D(keepdims=True, dtype=style.dtype, name=f"{prefix}_se_pool")(x)
    s = layers.Conv2D(squeezed, 1, dtype=style.dtype, name=f"{prefix}_se_reduce")(s)
    s = layers.ReLU(dtype=style.dtype, name=f"{prefix}_se_relu")(s)
    s = layers.Conv2D(channels, 1, activation="sigmoid", dtype=style.dtype, name=f"{prefix}_se_expand")(s)
    return layers.Multiply(dtype=style.dtype, name=f"{prefix}_se_scale")([x, s])


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor``, at least ``divisor``."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)
