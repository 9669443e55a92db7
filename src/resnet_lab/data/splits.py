"""The one shape every data set arrives in: train/val/test arrays plus their metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from resnet_lab.errors import DataError


@dataclass
class Splits:
    x_train: np.ndarray  # float32, (n, height, width, channels)
    y_train: np.ndarray  # int32 class indices
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: List[str] = field(default_factory=list)

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


def standardize(splits: Splits) -> Splits:
    """Per-channel zero mean and unit variance, with statistics from the training split only."""
    axes = tuple(range(splits.x_train.ndim - 1))
    mean = splits.x_train.mean(axis=axes, dtype=np.float64)
    std = splits.x_train.std(axis=axes, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)

    def apply(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    splits.x_train, splits.x_val, splits.x_test = apply(splits.x_train), apply(splits.x_val), apply(splits.x_test)
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
