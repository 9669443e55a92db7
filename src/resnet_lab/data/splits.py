"""The one shape every data set arrives in: train/val/test arrays plus their metadata.

The arrays hold the images as the data set stores them (uint8 0..255 for CIFAR, MNIST, Fashion-MNIST and
image folders; scikit-learn's 0..16 for digits), never scaled or standardized: the network does that
itself, in its first layer, with the per-channel statistics ``channel_statistics`` computes here from the
training split. So the trained model takes what the data set holds, and so does the MLflow Model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from resnet_lab.errors import DataError


@dataclass
class Splits:
    x_train: np.ndarray  # (n, height, width, channels) as stored: uint8 0..255, or float32 (digits 0..16, synthetic)
    y_train: np.ndarray  # int32 class indices
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: List[str] = field(default_factory=list)
    pixel_max: float = 1.0  # a full-intensity value as stored: 255 for uint8 sets, 16 for digits, 1 for synthetic
    # What the network's input layer subtracts and divides by, per channel, in the stored units (set by
    # ``data.load_splits``): the training split's mean and sd, or 0 and ``pixel_max`` with data.normalize=false.
    channel_mean: Tuple[float, ...] = ()
    channel_std: Tuple[float, ...] = ()

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, key: str):
    """Hold out ``fraction`` of (x, y) with the class proportions kept; returns (kept, held out).

    ``key`` names the config entry that set ``fraction``, for the error when it is too small.
    """
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(y))
    held_out = int(np.ceil(fraction * len(y)))
    if held_out < classes or len(y) - held_out < classes:
        raise DataError(
            f"{key}={fraction} holds out {held_out} of {len(y)} images, but each side of a stratified split "
            f"needs at least one image of each of the {classes} classes; choose a fraction that allows it"
        )

    x_keep, x_out, y_keep, y_out = train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)
    return (x_keep, y_keep), (x_out, y_out)


def channel_statistics(x: np.ndarray, chunk: int = 1024) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``x`` (n, height, width, channels), in float64.

    Two passes over ``chunk`` images at a time, so a uint8 CIFAR training split never has a float copy
    (a float64 one would be 1.1 GB); a channel of one constant value gets sd 1, so it divides by nothing.
    """
    channels = x.shape[-1]
    count = x.size // channels
    total = np.zeros(channels)
    for start in range(0, len(x), chunk):
        total += x[start:start + chunk].reshape(-1, channels).sum(axis=0, dtype=np.float64)
    mean = total / count
    squares = np.zeros(channels)
    for start in range(0, len(x), chunk):
        squares += ((x[start:start + chunk].reshape(-1, channels) - mean) ** 2).sum(axis=0)
    std = np.sqrt(squares / count)
    std = np.where(std > 0, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def set_input_statistics(splits: Splits, normalize: bool) -> Splits:
    """Record what the network subtracts and divides by: the training split's per-channel mean and sd
    (``data.normalize``), else 0 and ``pixel_max``, which scales the images to 0..1 as before raw inputs."""
    if normalize:
        splits.channel_mean, splits.channel_std = channel_statistics(splits.x_train)
    else:
        channels = splits.image_shape[-1]
        splits.channel_mean, splits.channel_std = (0.0,) * channels, (float(splits.pixel_max),) * channels
    return splits


def check_against_config(splits: Splits, image_shape: Sequence[int], num_classes: int, name: str) -> None:
    """The data must be what the config promised the model: same image shape, labels in range."""
    if list(splits.image_shape) != list(image_shape):
        raise DataError(
            f"data.image_shape={list(image_shape)} does not match the {name} images, which are "
            f"{list(splits.image_shape)}; set data.image_shape={list(splits.image_shape)}"
        )
    for part in ("train", "val", "test"):
        labels = getattr(splits, f"y_{part}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"data.num_classes={num_classes} but the {name} {part} labels run from {labels.min()} "
                f"to {labels.max()}; labels must lie in [0, {num_classes - 1}]"
            )
