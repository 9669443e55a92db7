"""Where the files of the published data sets come from, and proof that they are the published files.

A file given by ``data.path`` or found in the Keras cache is checked against the checksum its
publisher gives (``data.verify_checksum``); a file missing from the cache is downloaded when the
network allows (``data.download``) and checked the same way. Extracted folders have no published
checksum; they are read as they are.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from resnet_lab.errors import DataError

_KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class Published:
    algorithm: str  # md5 or sha256, whichever the publisher gives
    digest: str
    origin: str  # where to download it from


# The checksums the publishers give: CIFAR (www.cs.toronto.edu/~kriz/cifar.html), MNIST as Keras
# verifies it, Fashion-MNIST (github.com/zalandoresearch/fashion-mnist).
PUBLISHED: Dict[str, Published] = {
    "cifar-10-python.tar.gz": Published("md5", "c58f30108f718f92721af3b95e74349a",
                                        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar-100-python.tar.gz": Published("md5", "eb9058c3a382ffc7106e4002c42a8d85",
                                         "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    "mnist.npz": Published("sha256", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                           _KERAS_MIRROR + "mnist.npz"),
    "train-images-idx3-ubyte.gz": Published("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                            _KERAS_MIRROR + "train-images-idx3-ubyte.gz"),
    "train-labels-idx1-ubyte.gz": Published("md5", "25c81989df183df01b3e8a0aad5dffbe",
                                            _KERAS_MIRROR + "train-labels-idx1-ubyte.gz"),
    "t10k-images-idx3-ubyte.gz": Published("md5", "bef4ecab320f06d8554ea6380940ec79",
                                           _KERAS_MIRROR + "t10k-images-idx3-ubyte.gz"),
    "t10k-labels-idx1-ubyte.gz": Published("md5", "bb300cfdad3c16e7a12a480ee83cd310",
                                           _KERAS_MIRROR + "t10k-labels-idx1-ubyte.gz"),
}


def keras_cache() -> Path:
    """Keras' data set cache: ``$KERAS_HOME/datasets``, by default ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home).expanduser() / "datasets"


def digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify(path: Path, official_name: str) -> None:
    """Raise unless ``path`` holds exactly the published ``official_name`` file."""
    published = PUBLISHED[official_name]
    found = digest(path, published.algorithm)
    if found != published.digest:
        raise DataError(
            f"{path} has {published.algorithm} {found} but the published {official_name} has {published.digest}: "
            f"the file is truncated or not the official one; download it again, or set data.verify_checksum=false "
            f"for a file made in the same format"
        )


def fetch(official_name: str, folder: Path, download: bool) -> Path:
    """The cached file ``folder/official_name``, downloading it first when it is missing and allowed."""
    target = folder / official_name
    if target.is_file():
        return target
    where = f"put {official_name} in {folder} or set data.path to it"
    if not download:
        raise DataError(f"no {official_name} in {folder} and data.download=false; {where}")
    import keras

    published = PUBLISHED[official_name]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        keras.utils.get_file(official_name, origin=published.origin, file_hash=published.digest,
                             hash_algorithm=published.algorithm, cache_dir=str(folder), cache_subdir=".")
    except Exception as exc:  # offline, refused, or a download that does not match the checksum
        target.unlink(missing_ok=True)
        raise DataError(f"no {official_name} in {folder} and downloading {published.origin} failed "
                        f"({type(exc).__name__}); {where}") from None
    return target
