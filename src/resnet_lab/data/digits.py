"""scikit-learn's bundled 8x8 handwritten digits: real images that need no download."""

from __future__ import annotations

import numpy as np

from resnet_lab.data.splits import Splits, stratified_split


def load_digits_splits(val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.float32)[..., np.newaxis]  # as scikit-learn ships them: whole numbers 0..16
    y = digits.target.astype(np.int32)
    (x_rest, y_rest), (x_test, y_test) = stratified_split(x, y, test_fraction, split_seed, "data.test_fraction")
    # val_fraction is a share of the whole set, like test_fraction, so the two read alike.
    (x_train, y_train), (x_val, y_val) = stratified_split(
        x_rest, y_rest, val_fraction / (1.0 - test_fraction), split_seed, "data.val_fraction"
    )
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes=10,
                  class_names=[str(d) for d in range(10)], pixel_max=16.0)
