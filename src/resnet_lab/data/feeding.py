"""How in-memory arrays reach ``fit``, ``evaluate`` and ``predict``: the keyword arguments for them.

On the JAX and PyTorch backends the arrays go to Keras as they are. On TensorFlow, Keras would turn
them into a ``tf.data`` pipeline that autotunes its prefetching, and in TensorFlow 2.21 tearing down
such an iterator can wait for the autotuner's next wake-up, whose period doubles from 10 ms: a fit,
an epoch or a validation pass can take up to twice its length (measured: 10-step fits whose steps
took about 20.5 s returned at 40.96 s, five times in six; benchmarks/README.md, "Input pipeline").
So on TensorFlow the batches come from a pipeline of our own with autotuning off: shuffled indices,
batches gathered from one in-memory copy, two batches prefetched.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from resnet_lab.runtime.machine import keras_backend

PREFETCH_BATCHES = 2  # enough to have the next batch ready while a step runs
INFERENCE_BATCHES = 4  # the most training batches one inference batch holds


def training_feed(x: np.ndarray, y: np.ndarray, batch_size: int, seed: Optional[int] = None,
                  repeat: bool = False) -> Dict[str, Any]:
    """Keyword arguments for ``fit``: the training images in a new random order every epoch (drawn from
    ``seed`` on TensorFlow, from Keras' seeded generator elsewhere); ``repeat`` cycles them without end,
    for ``fit`` with a ``steps_per_epoch`` shorter than the data."""
    if keras_backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": True}
    # shuffle=False: the pipeline draws the order itself (Keras would warn about shuffling a Dataset)
    return {"x": _tf_batches(x, y, batch_size, shuffle=True, seed=seed, repeat=repeat), "shuffle": False}


def feed(x: np.ndarray, y: Optional[np.ndarray], batch_size: int) -> Dict[str, Any]:
    """Keyword arguments for ``evaluate`` (with labels ``y``) or ``predict`` (``y`` None), in order."""
    if keras_backend() != "tensorflow":
        return {"x": x, "batch_size": batch_size, **({} if y is None else {"y": y})}
    return {"x": _tf_batches(x, y, batch_size, shuffle=False, seed=None, repeat=False)}


def inference_batch_size(batch_size: int, validation_images: int) -> int:
    """The batch a run validates and tests in: the validation split in one batch of whole training batches, where
    it fits in ``INFERENCE_BATCHES`` of them. Inference keeps no activations for a backward pass, so a few training
    batches' worth fits where one trained; each call costs the same set-up however many images it carries."""
    return batch_size * max(1, min(INFERENCE_BATCHES, math.ceil(validation_images / batch_size)))


def filled_up(x: np.ndarray, batch_size: int) -> np.ndarray:
    """``x`` and, where its last batch is short, copies of its first images up to a whole batch."""
    short = -len(x) % batch_size
    return np.concatenate([x, x[np.arange(short) % len(x)]]) if short else x


def predict_in_full_batches(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for ``x``, predicted in batches of one shape: a short last batch is filled up with
    copies of the first images, whose outputs are dropped. Keras traces (or compiles) its predict function for each
    new batch shape, and for a ResNet-56 that trace takes over a second; the images' outputs do not depend on their
    batch-mates in inference.

    On TensorFlow outside a distribution strategy each batch goes straight into that traced function
    (``predict_on_batch``): ``predict`` would build a ``tf.data`` pipeline and an iterator for every pass, which
    cost more than the pass itself on a small split (a ResNet-20's 180 validation images: 24 ms against 10 ms).
    A strategy's replicas need ``predict``'s distributed batches."""
    filled = filled_up(x, batch_size)
    if keras_backend() == "tensorflow" and not _in_strategy():
        batches = [model.predict_on_batch(filled[i:i + batch_size]) for i in range(0, len(filled), batch_size)]
        return np.concatenate(batches)[:len(x)]
    return np.asarray(model.predict(**feed(filled, None, batch_size), verbose=0))[:len(x)]


def _in_strategy() -> bool:
    import tensorflow as tf

    return tf.distribute.has_strategy()


def _tf_batches(x: np.ndarray, y: Optional[np.ndarray], batch_size: int, shuffle: bool, seed: Optional[int],
                repeat: bool) -> Any:
    import tensorflow as tf

    with tf.device("/cpu:0"):  # tf.data runs on the host: a copy in GPU memory would travel back
        images = tf.constant(x)
        labels = None if y is None else tf.constant(y)
    order = tf.data.Dataset.range(len(x))
    if shuffle:
        order = order.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        order = order.repeat()

    def gather(indices):
        if labels is None:
            return tf.gather(images, indices)
        return tf.gather(images, indices), tf.gather(labels, indices)

    options = tf.data.Options()
    options.autotune.enabled = False
    return order.batch(batch_size).map(gather).prefetch(PREFETCH_BATCHES).with_options(options)
