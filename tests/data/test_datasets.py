"""Checksums, the Keras cache and downloads; MNIST-style sets and image folders, made here in the exact formats."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers.archives import UNOFFICIAL, write_cifar, write_fashion, write_folder, write_mnist_npz
from helpers.configs import compose_config

from resnet_lab.data import load_splits, sources
from resnet_lab.data.sources import Published, digest
from resnet_lab.errors import DataError


def load(overrides):
    return load_splits(compose_config("train", overrides).data)


# --- checksums, cache, download -------------------------------------------------------------------

def test_an_archive_that_is_not_the_published_one_is_refused(tmp_path):
    archive = write_cifar(tmp_path, "cifar10")
    with pytest.raises(DataError, match=r"has md5 [0-9a-f]{32} but the published cifar-10-python\.tar\.gz has "
                                        r"c58f30108f718f92721af3b95e74349a: the file is truncated"):
        load(["data=cifar10", f"data.path={archive}"])


def test_an_archive_with_the_published_checksum_is_accepted(tmp_path, monkeypatch):
    archive = write_cifar(tmp_path, "cifar10")
    published = Published("md5", digest(archive, "md5"), "unused")
    monkeypatch.setitem(sources.PUBLISHED, "cifar-10-python.tar.gz", published)
    assert load(["data=cifar10", f"data.path={archive}"]).num_classes == 10
    archive.write_bytes(archive.read_bytes()[:-10])  # one byte short is enough to fail
    with pytest.raises(DataError, match="truncated or not the official one"):
        load(["data=cifar10", f"data.path={archive}"])


def test_without_a_path_the_keras_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    write_cifar(cache, "cifar10")
    assert load(["data=cifar10", UNOFFICIAL]).sizes()["test"] == 20


def test_offline_and_no_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    closed = Published("md5", "0" * 32, "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens on port 9
    monkeypatch.setitem(sources.PUBLISHED, "cifar-10-python.tar.gz", closed)
    cache = tmp_path / "keras" / "datasets"
    with pytest.raises(DataError, match=rf"no cifar-10-python\.tar\.gz in {cache} and downloading "
                                        rf"http://127\.0\.0\.1:9/\S+ failed \(\w+\); put cifar-10-python\.tar\.gz "
                                        rf"in {cache} or set data\.path to it"):
        load(["data=cifar10"])
    assert not (cache / "cifar-10-python.tar.gz").exists()  # no partial file left to trip the next run
    with pytest.raises(DataError, match=r"and data\.download=false; put cifar-10-python\.tar\.gz in"):
        load(["data=cifar10", "data.download=false"])


# --- MNIST and Fashion-MNIST ----------------------------------------------------------------------

def test_mnist_reads_the_keras_npz_with_a_stratified_validation_split(tmp_path):
    npz = write_mnist_npz(tmp_path / "mnist.npz")
    for path in (npz, tmp_path):
        splits = load(["data=mnist", f"data.path={path}", UNOFFICIAL, "data.normalize=false"])
        assert splits.sizes() == {"train": 180, "val": 20, "test": 50}  # test untouched, 10% of train held out
        assert splits.image_shape == (28, 28, 1) and splits.x_train.dtype == np.uint8
        assert np.bincount(splits.y_val).tolist() == [2] * 10
    with np.load(npz) as raw:
        np.testing.assert_array_equal(splits.x_test[3, :, :, 0], raw["x_test"][3])  # the stored values
    with pytest.raises(DataError, match=r"published mnist\.npz has 731c5ac6"):
        load(["data=mnist", f"data.path={npz}"])


def test_fashion_mnist_reads_the_official_idx_files(tmp_path):
    folder = write_fashion(tmp_path / "fashion")
    splits = load(["data=fashion_mnist", f"data.path={folder}", UNOFFICIAL])
    assert splits.sizes() == {"train": 180, "val": 20, "test": 50}
    assert splits.class_names[9] == "Ankle boot"
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz has md5 .* published"):
        load(["data=fashion_mnist", f"data.path={folder}"])


def test_fashion_mnist_from_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_fashion(tmp_path / "datasets" / "fashion-mnist")
    assert load(["data=fashion_mnist", UNOFFICIAL]).sizes()["test"] == 50


def test_a_truncated_idx_file_is_a_clear_error(tmp_path):
    folder = write_fashion(tmp_path / "fashion")
    images = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz is truncated: its header promises "
                                        r"\(50, 28, 28\) values"):
        load(["data=fashion_mnist", f"data.path={folder}", UNOFFICIAL])


def test_mnist_labels_outside_num_classes_are_a_clear_error(tmp_path):
    npz = write_mnist_npz(tmp_path / "mnist.npz")
    with pytest.raises(DataError, match=r"data\.num_classes=5 but the mnist train labels run from 0 to 9"):
        load(["data=mnist", f"data.path={npz}", UNOFFICIAL, "data.num_classes=5"])


# --- image folders --------------------------------------------------------------------------------

def test_an_image_folder_is_resized_split_and_labelled_by_folder(tmp_path):
    root = write_folder(tmp_path / "pets")
    rgb = load(["data=image_folder", f"data.path={root}", "data.num_classes=3", "data.image_shape=[8,6,3]",
                "data.val_fraction=0.2", "data.test_fraction=0.3", "data.normalize=false"])
    assert rgb.class_names == ["cat", "dog", "eel"] and rgb.image_shape == (8, 6, 3)
    assert rgb.sizes() == {"train": 14, "val": 7, "test": 9}  # sklearn rounds a held-out share up
    assert np.bincount(rgb.y_test).tolist() == [3, 3, 3]
    assert rgb.x_train[rgb.y_train == 2].mean() > rgb.x_train[rgb.y_train == 0].mean()  # eel pixels are brighter
    gray = load(["data=image_folder", f"data.path={root}", "data.num_classes=3", "data.image_shape=[5,5,1]"])
    assert gray.image_shape == (5, 5, 1)


def test_an_image_folder_with_train_and_test_keeps_its_test_split(tmp_path):
    write_folder(tmp_path / "set" / "train", per_class=10)
    write_folder(tmp_path / "set" / "test", per_class=4)
    splits = load(["data=image_folder", f"data.path={tmp_path / 'set'}", "data.num_classes=3",
                   "data.image_shape=[8,8,3]"])
    assert splits.sizes() == {"train": 27, "val": 3, "test": 12}


@pytest.mark.parametrize("damage, message", [
    ("empty", r"the class folder .*/dog holds no images"),
    ("classes", r"data\.num_classes=4 but .*/pets has 3 class folders \(cat, dog, eel\); set data\.num_classes=3"),
    ("missing", r"data\.path='.*/nowhere' is not a folder"),
    ("corrupt", r"/cat/0\.jpg is not a readable image"),
])
def test_a_broken_image_folder_is_a_clear_error(tmp_path, damage, message):
    root = write_folder(tmp_path / "pets")
    classes, path = 3, root
    if damage == "empty":
        for file in (root / "dog").iterdir():
            file.unlink()
    elif damage == "classes":
        classes = 4
    elif damage == "missing":
        path = tmp_path / "nowhere"
    else:
        (root / "cat" / "0.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=message):
        load(["data=image_folder", f"data.path={path}", f"data.num_classes={classes}", "data.image_shape=[8,8,3]"])
