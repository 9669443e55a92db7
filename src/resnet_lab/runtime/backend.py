"""How this process drives the Keras backend: seeding, deterministic ops and data parallelism.

Nothing here imports TensorFlow unless TensorFlow is the Keras backend: on JAX or PyTorch a run
must never pay for (or grab a GPU through) a TensorFlow import it does not use.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import Any, Iterator, List, Sequence

import numpy as np

from resnet_lab.errors import ConfigError


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python and NumPy, and on JAX and PyTorch also Keras' global generator and the backend; with
    ``deterministic`` also ask the backend for deterministic ops.

    On TensorFlow its global seed is left unset, in every process: setting it (``tf.random.set_seed``, which
    ``keras.utils.set_random_seed`` calls) clears TensorFlow's kernel caches, so that every function already
    traced is instantiated and optimized again at its next call: 2-6 s at the first step of each job that
    shares a traced model with an earlier seed (2-core CPU). Nothing a run computes reads it: Keras draws
    through stateless ops from seeds its layers drew from Python's generator, and the training data's order
    comes from the run's seed, given to ``tf.data`` itself (``data/feeding.py``).

    Elsewhere ``keras.utils.set_random_seed`` would import TensorFlow whenever it is installed (seconds of
    start-up, and on a GPU machine TensorFlow would claim the GPU's memory): it is kept out.
    """
    import keras

    if deterministic:
        _deterministic_ops(keras.backend.backend())

    if keras.backend.backend() == "tensorflow":
        random.seed(seed)
        np.random.seed(seed)
        return
    if "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    # Keras then remembers TensorFlow as unavailable, which is true for this backend's purposes.
    with _tensorflow_hidden():
        keras.utils.set_random_seed(seed)


def variable_values(variables: Sequence[Any]) -> List[np.ndarray]:
    """The values of many variables as NumPy arrays, exactly as ``keras.ops.convert_to_numpy`` reads each.

    On TensorFlow (outside a distribution strategy) the list is read by one eager ``IdentityN`` op: read one by one,
    each is an op of its own, and the 612 variables of a ResNet-56 and its Adam state take 146 ms against 25 ms
    (2-core AVX2 EPYC). A traced reader reads them in 11 ms, but tracing it took 2 s: more than a short sweep's
    checkpoints ever save.
    """
    import keras

    if keras.backend.backend() == "tensorflow" and variables:
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            return [t.numpy() for t in tf.identity_n([v.value for v in variables])]
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _deterministic_ops(backend: str) -> None:
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


@contextlib.contextmanager
def _tensorflow_hidden() -> Iterator[None]:
    """Within the block ``import tensorflow`` fails (a ``None`` entry in sys.modules means "absent")."""
    sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]


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
