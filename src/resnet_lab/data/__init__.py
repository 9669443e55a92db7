"""Data sets, each loaded into one ``Splits`` object."""

from __future__ import annotations

from typing import Any

from resnet_lab.data.registry import LOADERS
from resnet_lab.data.splits import Splits, check_against_config, standardize


def load_splits(data: Any) -> Splits:
    """Load the data set that ``data`` (a ``DataConfig``) names, check it against the config, normalize."""
    if data.name not in LOADERS:  # validation lists the names; this guards callers that skip it
        raise ValueError(f"unknown data set {data.name!r}")
    splits = LOADERS[data.name](data)
    check_against_config(splits, data.image_shape, data.num_classes, data.name)
    return standardize(splits) if data.normalize else splits


__all__ = ["Splits", "load_splits"]
