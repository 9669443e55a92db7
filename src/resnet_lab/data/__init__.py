"""Data sets, each loaded into one ``Splits`` object (``data/splits.py``).

Importing the package imports nothing heavy: the config schema reads the data set names from
``data/registry.py`` at every command's start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resnet_lab.data.registry import LOADERS

if TYPE_CHECKING:
    from resnet_lab.data.splits import Splits


def load_splits(data: Any) -> Splits:
    """Load the data set that ``data`` (a ``DataConfig``) names, as it stores its images, check it against
    the config, and record the per-channel statistics the network's input layer normalizes with."""
    from resnet_lab.data.splits import check_against_config, set_input_statistics

    if data.name not in LOADERS:  # validation lists the names; this guards callers that skip it
        raise ValueError(f"unknown data set {data.name!r}")
    splits = LOADERS[data.name](data)
    check_against_config(splits, data.image_shape, data.num_classes, data.name)
    return set_input_statistics(splits, data.normalize)


__all__ = ["load_splits"]
