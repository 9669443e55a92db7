"""The data sets ``data.name`` can name, each with the loader that reads it: the one list to extend.

Adding a data set is a loader module, one entry here and a YAML file in ``conf/data/``. Loaders
are imported only when their data set is used, so naming the data sets costs no import.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

Loader = Callable[[Any], Any]  # a DataConfig in, a Splits out


def _digits(data: Any) -> Any:
    from resnet_lab.data.digits import load_digits_splits

    return load_digits_splits(data.val_fraction, data.test_fraction, data.split_seed)


def _synthetic(data: Any) -> Any:
    from resnet_lab.data.synthetic import load_synthetic_splits

    return load_synthetic_splits(data.image_shape, data.num_classes, data.train_size, data.val_size,
                                 data.test_size, data.split_seed)


def _cifar(data: Any) -> Any:
    from resnet_lab.data.cifar import load_cifar_splits

    return load_cifar_splits(data.name, data.path, data.val_fraction, data.split_seed, data.verify_checksum,
                             data.download)


def _mnist_like(data: Any) -> Any:
    from resnet_lab.data.mnist import load_mnist_like_splits

    return load_mnist_like_splits(data.name, data.path, data.val_fraction, data.split_seed, data.verify_checksum,
                                  data.download)


def _image_folder(data: Any) -> Any:
    from resnet_lab.data.image_folder import load_image_folder_splits

    return load_image_folder_splits(data.path, data.image_shape, data.num_classes, data.val_fraction,
                                    data.test_fraction, data.split_seed)


LOADERS: Dict[str, Loader] = {
    "digits": _digits,  # scikit-learn's bundled 8x8 digits: the embedded default
    "synthetic": _synthetic,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "mnist": _mnist_like,
    "fashion_mnist": _mnist_like,
    "image_folder": _image_folder,
}
DATASETS = tuple(LOADERS)
