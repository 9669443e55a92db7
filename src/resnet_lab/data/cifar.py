"""CIFAR-10 and CIFAR-100 from the official python-format archives or their extracted folders."""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from resnet_lab.data.sources import fetch, keras_cache, verify
from resnet_lab.data.splits import Splits, stratified_split
from resnet_lab.errors import DataError


@dataclass(frozen=True)
class CifarLayout:
    archive: str  # official archive name
    folder: str  # folder the archive unpacks to
    train: Tuple[str, ...]
    test: str
    meta: str
    label_key: bytes
    names_key: bytes


LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-python.tar.gz", "cifar-10-batches-py",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
                           b"labels", b"label_names"),
    "cifar100": CifarLayout("cifar-100-python.tar.gz", "cifar-100-python", ("train",), "test", "meta",
                            b"fine_labels", b"fine_label_names"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the batches' dicts of NumPy arrays and refuses anything else a file could smuggle in."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def load_cifar_splits(name: str, path: Optional[str], val_fraction: float, split_seed: int,
                      verify_checksum: bool = True, download: bool = True) -> Splits:
    layout = LAYOUTS[name]
    source = _locate(layout, path, download)
    if source.is_file() and verify_checksum:
        verify(source, layout.archive)
    files = _open_source(layout, source)
    train = [_batch(files, member, layout) for member in layout.train]
    x_all = np.concatenate([x for x, _ in train])
    y_all = np.concatenate([y for _, y in train])
    x_test, y_test = _batch(files, layout.test, layout)
    meta = _unpickle(files, layout.meta)
    class_names = [n.decode() for n in meta.get(layout.names_key, [])]
    (x_train, y_train), (x_val, y_val) = stratified_split(x_all, y_all, val_fraction, split_seed, "data.val_fraction")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test,
                  num_classes=len(class_names) or int(y_all.max()) + 1, class_names=class_names, pixel_max=255.0)


def _locate(layout: CifarLayout, path: Optional[str], download: bool) -> Path:
    """The archive or extracted folder: at ``data.path``, else in the Keras cache (downloaded if missing)."""
    if path is None:
        cache = keras_cache()
        if (cache / layout.folder / layout.test).is_file():
            return cache / layout.folder
        return fetch(layout.archive, cache, download)
    root = Path(path).expanduser()
    for candidate in (root, root / layout.folder, root / layout.archive):
        if candidate.is_file() or (candidate / layout.test).is_file():
            return candidate
    raise DataError(
        f"no {layout.archive} (or its extracted folder {layout.folder}/) found at data.path={path!r}; "
        f"put the file there or set data.path to it"
    )


def _open_source(layout: CifarLayout, source: Path) -> Dict[str, bytes]:
    """Every file the loader needs, as bytes, from either the archive or the extracted folder."""
    wanted = set(layout.train) | {layout.test, layout.meta}
    if source.is_dir():
        return {name: (source / name).read_bytes() for name in wanted if (source / name).is_file()}
    try:
        with tarfile.open(source, "r:gz") as archive:
            files = {}
            for member in archive.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    files[base] = archive.extractfile(member).read()  # type: ignore[union-attr]
            return files
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{source} is not a readable {layout.archive} archive ({exc})") from None


def _unpickle(files: Dict[str, bytes], member: str) -> dict:
    if member not in files:
        raise DataError(f"the CIFAR data is missing its '{member}' file")
    try:
        return _ArrayUnpickler(io.BytesIO(files[member]), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"the CIFAR file '{member}' is corrupt or not in the python format ({exc})") from None


def _batch(files: Dict[str, bytes], member: str, layout: CifarLayout):
    batch = _unpickle(files, member)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[layout.label_key], dtype=np.int32)
    except KeyError as exc:
        raise DataError(f"the CIFAR file '{member}' has no {exc.args[0]!r} entry") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"the CIFAR file '{member}' holds data of shape {data.shape}; expected (n, 3072)")
    # Rows are three 32x32 planes (R, G, B); the models want height, width, channels. The values stay the
    # archive's uint8 0..255: the network scales them (a quarter of the memory of a float32 copy).
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels
