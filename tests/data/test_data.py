"""Data sets: real digits, synthetic images, and CIFAR read from archives made here in the official format."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers.archives import UNOFFICIAL, write_cifar
from helpers.configs import compose_config

from resnet_lab.data import load_splits
from resnet_lab.errors import DataError


def test_digits_split_is_stratified_fixed_raw_and_carries_training_statistics():
    data = compose_config("train").data
    a, b = load_splits(data), load_splits(data)
    assert a.sizes() == {"train": 1257, "val": 180, "test": 360}  # 1,797 real images
    np.testing.assert_array_equal(a.y_test, b.y_test)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.image_shape == (8, 8, 1) and a.x_train.dtype == np.float32
    # As scikit-learn ships them: whole numbers 0..16, never scaled or standardized.
    assert a.x_test.min() == 0 and a.x_test.max() == 16 and np.array_equal(a.x_test, np.round(a.x_test))
    assert a.pixel_max == 16.0
    # The statistics the network standardizes with: the training split's only, in float64.
    assert a.channel_mean == pytest.approx((a.x_train.astype(np.float64).mean(),), rel=1e-12)
    assert a.channel_std == pytest.approx((a.x_train.astype(np.float64).std(),), rel=1e-12)
    for labels in (a.y_train, a.y_val, a.y_test):  # every class in proportion in every split
        counts = np.bincount(labels, minlength=10) / len(labels)
        assert counts.min() > 0.08 and counts.max() < 0.12


def test_digits_split_does_not_follow_the_training_seed():
    a = load_splits(compose_config("train", ["seed=1"]).data)
    b = load_splits(compose_config("train", ["seed=2"]).data)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_synthetic_data_takes_any_shape_and_size():
    data = compose_config("train", ["data=synthetic", "data.image_shape=[12,10,2]", "data.num_classes=7",
                                    "data.train_size=70", "data.val_size=20", "data.test_size=30"]).data
    splits = load_splits(data)
    assert splits.image_shape == (12, 10, 2) and splits.num_classes == 7
    assert splits.sizes() == {"train": 70, "val": 20, "test": 30}
    assert splits.y_train.max() < 7


def test_digits_with_a_wrong_image_shape_says_which_shape_to_use():
    data = compose_config("train", ["data.image_shape=[32,32,3]"]).data
    with pytest.raises(DataError, match=r"data\.image_shape=\[32, 32, 3\] does not match the digits images, "
                                        r"which are \[8, 8, 1\]"):
        load_splits(data)


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_loads_from_the_official_archive_and_from_its_folder(tmp_path, name, classes):
    archive = write_cifar(tmp_path, name)
    for path in (archive, tmp_path):
        splits = load_splits(compose_config("train", [f"data={name}", f"data.path={path}", UNOFFICIAL]).data)
        assert splits.image_shape == (32, 32, 3) and splits.num_classes == classes
        assert len(splits.class_names) == classes
        total = splits.sizes()
        assert total["train"] + total["val"] == (100 if name == "cifar10" else 1000)

    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = next((tmp_path / "x").iterdir())
    splits = load_splits(compose_config("train", [f"data={name}", f"data.path={folder}", UNOFFICIAL]).data)
    assert splits.num_classes == classes


def test_cifar_pixels_are_laid_out_as_three_planes_and_kept_as_uint8(tmp_path):
    write_cifar(tmp_path, "cifar10")
    data = compose_config("train", ["data=cifar10", f"data.path={tmp_path}", "data.normalize=false", UNOFFICIAL]).data
    splits = load_splits(data)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz") as tar:
        raw = pickle.load(tar.extractfile("cifar-10-batches-py/test_batch"), encoding="bytes")
    first = raw[b"data"][0]
    assert splits.x_train.dtype == splits.x_test.dtype == np.uint8  # a quarter of a float32 copy's memory
    np.testing.assert_array_equal(splits.x_test[0, 0, 0], [first[0], first[1024], first[2048]])
    # data.normalize=false: the network only scales 0..255 to 0..1, as the loader did before.
    assert splits.channel_mean == (0.0, 0.0, 0.0) and splits.channel_std == (255.0, 255.0, 255.0)


def test_channel_statistics_in_chunks_match_numpy_and_spare_constant_channels():
    from resnet_lab.data.splits import channel_statistics

    x = np.random.default_rng(0).integers(0, 256, size=(50, 4, 4, 3), dtype=np.uint8)
    x[..., 2] = 7  # a constant channel: sd 1, so that it divides by nothing
    mean, std = channel_statistics(x, chunk=8)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2), dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(std[:2], x[..., :2].std(axis=(0, 1, 2), dtype=np.float64), rtol=1e-12)
    assert std[2] == 1.0


def test_missing_cifar_says_where_to_put_the_file(tmp_path):
    data = compose_config("train", ["data=cifar10", f"data.path={tmp_path / 'nowhere'}"]).data
    with pytest.raises(DataError, match=r"no cifar-10-python\.tar\.gz .* put the file there or set data\.path"):
        load_splits(data)


def test_truncated_cifar_archive_is_a_clear_error(tmp_path):
    archive = write_cifar(tmp_path, "cifar10", corrupt=True)
    with pytest.raises(DataError, match="not a readable cifar-10-python.tar.gz archive"):
        load_splits(compose_config("train", ["data=cifar10", f"data.path={archive}", UNOFFICIAL]).data)


def test_cifar_with_too_few_classes_configured_is_a_clear_error(tmp_path):
    write_cifar(tmp_path, "cifar100")
    data = compose_config("train", ["data=cifar100", f"data.path={tmp_path}", "data.num_classes=10", UNOFFICIAL]).data
    with pytest.raises(DataError, match=r"data\.num_classes=10 but the cifar100 .* labels run from 0 to 99"):
        load_splits(data)


def test_a_pickle_that_smuggles_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for member in ("data_batch_1", "test_batch"):
        (folder / member).write_bytes(pickle.dumps(Path("/etc/passwd")))
    with pytest.raises(DataError, match="not allowed in a CIFAR batch"):
        load_splits(compose_config("train", ["data=cifar10", f"data.path={folder}"]).data)
