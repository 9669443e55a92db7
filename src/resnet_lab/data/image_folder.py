"""A folder of images with one sub-folder per class, resized to ``data.image_shape``.

``root/<class>/*.png`` holds out a stratified test split (``data.test_fraction``); a folder with
``train/`` and ``test/`` sub-folders (each one sub-folder per class) keeps that test split as it is.
Images are decoded once, by a pool of threads, into memory, so no epoch waits on decoding; a set
too large for memory is beyond this loader.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from resnet_lab.data.splits import Splits, stratified_split
from resnet_lab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image_folder_splits(path: str, image_shape: Sequence[int], num_classes: int, val_fraction: float,
                             test_fraction: float, split_seed: int) -> Splits:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={path!r} is not a folder; image_folder needs one sub-folder of images per class")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _classes(root / "train", num_classes)
        if _classes(root / "test", num_classes) != classes:
            raise DataError(f"{root / 'test'} must have the same class folders as {root / 'train'}: {classes}")
        x_all, y_all = _read(root / "train", classes, image_shape)
        x_test, y_test = _read(root / "test", classes, image_shape)
        val_share = val_fraction
    else:
        classes = _classes(root, num_classes)
        x, y = _read(root, classes, image_shape)
        (x_all, y_all), (x_test, y_test) = stratified_split(x, y, test_fraction, split_seed, "data.test_fraction")
        val_share = val_fraction / (1.0 - test_fraction)  # a share of the whole set, as for digits
    (x_train, y_train), (x_val, y_val) = stratified_split(x_all, y_all, val_share, split_seed, "data.val_fraction")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes=len(classes), class_names=classes,
                  pixel_max=255.0)


def _classes(folder: Path, num_classes: int) -> List[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) != num_classes:
        raise DataError(f"data.num_classes={num_classes} but {folder} has {len(classes)} class folders "
                        f"({', '.join(classes[:20]) or 'none'}); set data.num_classes={len(classes)}")
    for name in classes:
        if not _images_in(folder / name):
            raise DataError(f"the class folder {folder / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return classes


def _images_in(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read(folder: Path, classes: List[str], image_shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    files, labels = [], []
    for index, name in enumerate(classes):
        found = _images_in(folder / name)
        files += found
        labels += [index] * len(found)
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise DataError(f"data.image_shape={list(image_shape)}: image folders are read as grayscale (1 channel) "
                        f"or RGB (3 channels)")
    mode = "L" if channels == 1 else "RGB"
    images = np.empty((len(files), height, width, channels), dtype=np.uint8)

    def decode(i: int) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(files[i]) as image:
                resized = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{files[i]} is not a readable image ({exc})") from None
        images[i] = np.asarray(resized, dtype=np.uint8).reshape(height, width, channels)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(decode, range(len(files))))  # list() re-raises the first decoding error
    return images, np.asarray(labels, dtype=np.int32)  # uint8 0..255, as decoded: the network scales them
