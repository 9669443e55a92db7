"""The input pipeline of resnet_lab.data.feeding, read batch by batch (TensorFlow backend, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_lab.data.feeding import feed, training_feed
from resnet_lab.runtime.machine import keras_backend

pytestmark = pytest.mark.skipif(keras_backend() != "tensorflow", reason="the pipeline is TensorFlow's")

X = np.arange(10, dtype="float32").reshape(10, 1, 1, 1)
Y = np.arange(10)


def epoch(dataset):
    return [(images.numpy().ravel().tolist(), labels.numpy().tolist()) for images, labels in dataset]


def test_training_batches_keep_pairs_and_cover_every_image_once_per_epoch_in_a_new_order():
    dataset = training_feed(X, Y, batch_size=4, seed=3)["x"]
    first, second = epoch(dataset), epoch(dataset)
    for batches in (first, second):
        assert [len(labels) for _, labels in batches] == [4, 4, 2]
        assert all(images == [float(label) for label in labels] for images, labels in batches)
        assert sorted(label for _, labels in batches for label in labels) == list(range(10))
    assert first != second  # reshuffled each epoch
    assert epoch(training_feed(X, Y, batch_size=4, seed=3)["x"]) == first  # the seed fixes the order


def test_autotuning_is_off_and_evaluation_keeps_the_order():
    dataset = training_feed(X, Y, batch_size=4, seed=0)["x"]
    assert dataset.options().autotune.enabled is False
    assert [labels for _, labels in epoch(feed(X, Y, 4)["x"])] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    predict = [batch.numpy().ravel().tolist() for batch in feed(X, None, 4)["x"]]
    assert predict == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_repeat_cycles_without_end_for_capped_epochs():
    dataset = training_feed(X, Y, batch_size=4, seed=0, repeat=True)["x"]
    labels = [label for _, batch in zip(range(5), dataset) for label in batch[1].numpy().tolist()]
    assert len(labels) == 20 and sorted(labels[:10]) == list(range(10))
