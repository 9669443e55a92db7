"""Data sets, each loaded into one ``Splits`` object."""

from __future__ import annotations

from typing import Any

from resnet_lab.data.splits import Splits, check_against_config, standardize


def load_splits(data: Any) -> Splits:
    """Load the data set that ``data`` (a ``DataConfig``) names, check it against the config, normalize."""
    if data.name == "digits":
        from resnet_lab.data.digits import load_digits_splits

        splits = load_digits_splits(data.val_fraction, data.test_fraction, data.split_seed)
    elif data.name == "synthetic":
        from resnet_lab.data.synthetic import load_synthetic_splits

        splits = load_synthetic_splits(data.image_shape, data.num_classes, data.train_size, data.val_size,
                                       data.test_size, data.split_seed)
    elif data.name in ("cifar10", "cifar100"):
        from resnet_lab.data.cifar import load_cifar_splits

        splits = load_cifar_splits(data.name, data.path, data.val_fraction, data.split_seed,
                                   data.verify_checksum, data.download)
    elif data.name in ("mnist", "fashion_mnist"):
        from resnet_lab.data.mnist import load_mnist_like_splits

        splits = load_mnist_like_splits(data.name, data.path, data.val_fraction, data.split_seed,
                                        data.verify_checksum, data.download)
    elif data.name == "image_folder":
        from resnet_lab.data.image_folder import load_image_folder_splits

        splits = load_image_folder_splits(data.path, data.image_shape, data.num_classes, data.val_fraction,
                                          data.test_fraction, data.split_seed)
    else:  # validation lists the names; this guards callers that skip it
        raise ValueError(f"unknown data set {data.name!r}")
    check_against_config(splits, data.image_shape, data.num_classes, data.name)
    return standardize(splits) if data.normalize else splits


__all__ = ["Splits", "load_splits"]
