"""Random images of any shape: a fixed random pattern per class plus noise, so that models can learn."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from resnet_lab.data.splits import Splits


def load_synthetic_splits(
    image_shape: Sequence[int], num_classes: int, train_size: int, val_size: int, test_size: int,
    split_seed: int, noise: float = 1.0,
) -> Splits:
    rng = np.random.default_rng(split_seed)
    prototypes = rng.normal(size=(num_classes, *image_shape)).astype(np.float32)

    def draw(n: int):
        y = rng.integers(0, num_classes, size=n).astype(np.int32)
        x = prototypes[y] + noise * rng.normal(size=(n, *image_shape)).astype(np.float32)
        return x.astype(np.float32), y

    x_train, y_train = draw(train_size)
    x_val, y_val = draw(val_size)
    x_test, y_test = draw(test_size)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes=num_classes,
                  class_names=[f"class_{i}" for i in range(num_classes)])
