"""Data sets fabricated in the exact published formats: CIFAR archives, MNIST's npz, idx files, image folders.

Nothing can be downloaded here, so the loaders are tested on small files written byte for byte as the
publishers lay them out.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

# Archives made here are in the published format but cannot have the published checksum.
UNOFFICIAL = "data.verify_checksum=false"


def write_cifar(root: Path, name: str, per_batch: int = 20, corrupt: bool = False) -> Path:
    """A CIFAR archive in the exact published layout: pickled dicts of uint8 rows of three 32x32 planes."""
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder, train, test, meta = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", \
            "batches.meta"
        label_key, names, classes = b"labels", {b"label_names": [f"c{i}".encode() for i in range(10)]}, 10
        archive = root / "cifar-10-python.tar.gz"
    else:
        folder, train, test, meta = "cifar-100-python", ["train"], "test", "meta"
        label_key, classes = b"fine_labels", 100
        names = {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                 b"coarse_label_names": [f"k{i}".encode() for i in range(20)]}
        archive = root / "cifar-100-python.tar.gz"
        per_batch = max(per_batch, 1000)

    def batch(n):
        labels = np.tile(np.arange(classes), n // classes + 1)[:n]
        return {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), label_key: labels.tolist(),
                b"batch_label": b"fabricated"}

    files = {m: pickle.dumps(batch(per_batch)) for m in train}
    files[test] = pickle.dumps(batch(per_batch))
    files[meta] = pickle.dumps(names)
    with tarfile.open(archive, "w:gz") as tar:
        for member, payload in files.items():
            info = tarfile.TarInfo(f"{folder}/{member}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    if corrupt:
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return archive


def fake_digits(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def write_mnist_npz(path: Path, train: int = 200, test: int = 50) -> Path:
    (x_train, y_train), (x_test, y_test) = fake_digits(train), fake_digits(test, 1)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_idx(path: Path, values: np.ndarray) -> None:
    header = bytes([0, 0, 8, values.ndim]) + b"".join(struct.pack(">I", d) for d in values.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + values.astype(np.uint8).tobytes())


def write_fashion(folder: Path, train: int = 200, test: int = 50) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", train, 0), ("t10k", test, 1)):
        x, y = fake_digits(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


def write_folder(root: Path, classes=("cat", "dog", "eel"), per_class: int = 10, size=(20, 14)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 40 * c, dtype=np.uint8) + rng.integers(0, 30, (size[1], size[0], 3),
                                                                                         dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root
