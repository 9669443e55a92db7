"""MNIST (Keras' ``mnist.npz``) and Fashion-MNIST (the four official idx ``.gz`` files, or an ``.npz``
with the same keys as MNIST's), from ``data.path`` or the Keras cache."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from resnet_lab.data.sources import fetch, keras_cache, verify
from resnet_lab.data.splits import Splits, stratified_split
from resnet_lab.errors import DataError

MNIST_FILE = "mnist.npz"
FASHION_FOLDER = "fashion-mnist"  # where Keras caches it
FASHION_FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]

Arrays = Tuple[np.ndarray, np.ndarray]


def load_mnist_like_splits(name: str, path: Optional[str], val_fraction: float, split_seed: int,
                           verify_checksum: bool = True, download: bool = True) -> Splits:
    if name == "mnist":
        train, test = _read_npz(_locate_mnist(path, download), verify_checksum, official=True)
        class_names = [str(d) for d in range(10)]
    else:
        train, test = _fashion(path, verify_checksum, download)
        class_names = FASHION_NAMES
    x_all, y_all = _to_images(*train)
    x_test, y_test = _to_images(*test)
    (x_train, y_train), (x_val, y_val) = stratified_split(x_all, y_all, val_fraction, split_seed, "data.val_fraction")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes=10, class_names=class_names,
                  pixel_max=255.0)


def _locate_mnist(path: Optional[str], download: bool) -> Path:
    if path is None:
        return fetch(MNIST_FILE, keras_cache(), download)
    root = Path(path).expanduser()
    for candidate in (root, root / MNIST_FILE):
        if candidate.is_file():
            return candidate
    raise DataError(f"no {MNIST_FILE} found at data.path={path!r}; put the file there or set data.path to it")


def _read_npz(file: Path, verify_checksum: bool, official: bool) -> Tuple[Arrays, Arrays]:
    if verify_checksum and official:
        verify(file, MNIST_FILE)
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    except KeyError as exc:
        raise DataError(f"{file} has no {exc.args[0]} array; expected x_train, y_train, x_test, y_test") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{file} is not a readable .npz file ({exc})") from None


def _fashion(path: Optional[str], verify_checksum: bool, download: bool) -> Tuple[Arrays, Arrays]:
    if path is not None and Path(path).expanduser().is_file():  # one .npz in MNIST's layout
        return _read_npz(Path(path).expanduser(), verify_checksum, official=False)
    folder = keras_cache() / FASHION_FOLDER if path is None else Path(path).expanduser()
    if path is not None and not folder.is_dir():
        raise DataError(f"data.path={path!r} does not exist; it must be the folder holding the four Fashion-MNIST "
                        f"files ({', '.join(sum(FASHION_FILES.values(), ()))}) or an .npz file")
    parts = []
    for images_name, labels_name in FASHION_FILES.values():
        files = []
        for official in (images_name, labels_name):
            file = fetch(official, folder, download and path is None) if path is None else folder / official
            if not file.is_file():
                raise DataError(f"no {official} in data.path={path!r}; put the four Fashion-MNIST files there")
            if verify_checksum:
                verify(file, official)
            files.append(file)
        parts.append((_read_idx(files[0], 3), _read_idx(files[1], 1)))
    return parts[0], parts[1]


def _read_idx(file: Path, dims: int) -> np.ndarray:
    """An idx file (LeCun's format): magic 0x0000 08 <dims>, big-endian sizes, then uint8 values."""
    try:
        with gzip.open(file, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{file} is not a readable gzip file ({exc})") from None
    header = 4 + 4 * dims
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != dims:
        raise DataError(f"{file} is not an idx file of {dims}-dimensional uint8 data")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    values = np.frombuffer(raw, np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise DataError(f"{file} is truncated: its header promises {shape} values, it holds {values.size}")
    return values.reshape(shape)


def _to_images(x: np.ndarray, y: np.ndarray) -> Arrays:
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"MNIST-style images must be (n, height, width) with one label each; got {x.shape} "
                        f"images and {y.shape} labels")
    if x.dtype != np.uint8:
        raise DataError(f"MNIST-style images must be uint8 (0..255), as the published files store them; got {x.dtype}")
    return x[..., np.newaxis], y.astype(np.int32)  # the stored uint8 values: the network scales them
