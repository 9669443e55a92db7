"""How a run executes: seeds and deterministic ops, and data parallelism over the local devices."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from resnet_lab.errors import ConfigError


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the backend; with ``deterministic`` also ask the backend for deterministic ops."""
    import keras

    if deterministic:
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        elif backend == "jax":  # read when JAX starts its GPU backend; CPU XLA is deterministic already
            flags = os.environ.get("XLA_FLAGS", "")
            if "xla_gpu_deterministic_ops" not in flags:
                os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()
        elif backend == "torch":
            import torch

            torch.use_deterministic_algorithms(True)
    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def distribution_scope(name: str) -> Iterator[int]:
    """Build, compile and fit inside this scope; yields the number of replicas.

    ``data_parallel`` copies the model to every local device and splits each batch between them:
    Keras' distribution API on JAX, ``tf.distribute.MirroredStrategy`` on TensorFlow.
    """
    if name == "none":
        yield 1
        return
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    else:
        raise ConfigError("trainer.distribution", name, f"'none' on the {backend} backend "
                          f"(data_parallel runs on jax and tensorflow)")
