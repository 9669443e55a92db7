"""What a network takes: the images a data set stores, standardized by the network's own first layer.

A trained network begins with ``input_normalize``, Keras' ``Normalization`` layer given the training
split's per-channel mean and variance in the units the images are stored in (uint8 0..255, digits' 0..16).
Given them, rather than adapted, it holds them in its config and creates no variables, so parameter
counts, checkpoints and ``set_weights`` from keras.applications are the same as without it. It computes
in float32 whatever the precision, so that raw values keep their precision; the next layer casts.

A network built without statistics (``resnet-lab-describe``, the zoo, keras.applications' weights) has
no such layer and takes images already preprocessed, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import keras

INPUT_NORMALIZE = "input_normalize"  # the layer's name: a contract for augmentation and the saved models


@dataclass(frozen=True)
class InputNormalization:
    """Per-channel ``(x - mean) / std`` in the stored units; ``std`` has no zeros (a constant channel has 1)."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @classmethod
    def of(cls, mean: Sequence[float], std: Sequence[float]) -> "InputNormalization":
        if len(mean) != len(std) or not mean:
            raise ValueError(f"one mean and one sd per channel; received mean={list(mean)} and std={list(std)}")
        if any(not s > 0 for s in std):
            raise ValueError(f"every channel's sd must be positive; received std={list(std)}")
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def layer(self) -> keras.layers.Layer:
        return keras.layers.Normalization(mean=list(self.mean), variance=[s * s for s in self.std],
                                          dtype="float32", name=INPUT_NORMALIZE)


def normalization_of(model: Any) -> Optional[InputNormalization]:
    """The statistics ``model``'s input layer normalizes with; None when it has no such layer."""
    try:
        layer = model.get_layer(INPUT_NORMALIZE)
    except ValueError:
        return None
    config = layer.get_config()
    return InputNormalization.of(config["mean"], [v ** 0.5 for v in config["variance"]])


def expected_input(model: Any) -> str:
    """One line: what ``model`` must be given."""
    found = normalization_of(model)
    if found is None:
        return (f"preprocessed images (standardized per channel; for keras.applications' weights, its "
                f"preprocess_input): no {INPUT_NORMALIZE} layer, as no data statistics were given (a trained "
                f"run's model takes raw images)")
    numbers = ", ".join(f"{m:.4g}/{s:.4g}" for m, s in zip(found.mean, found.std))
    return (f"images as the data set stores them (raw values, float32 or uint8); {INPUT_NORMALIZE} computes "
            f"(x - mean) / sd per channel, mean/sd {numbers}")
