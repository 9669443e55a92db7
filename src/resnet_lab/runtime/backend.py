"""How this process drives the Keras backend: seeding, deterministic ops and data parallelism.

Nothing here imports TensorFlow unless TensorFlow is the Keras backend: on JAX or PyTorch a run
must never pay for (or grab a GPU through) a TensorFlow import it does not use.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

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

    On TensorFlow (outside a distribution strategy) a list read again and again (a checkpoint's, every epoch)
    gets a traced function that reads it all in one call: read one by one, each is an eager op, and the 612
    variables of a ResNet-56 and its Adam state take 135 ms against 11 ms (2-core AVX2 EPYC). Tracing it costs
    about 0.6 s, so a list is read one by one until its third read.
    """
    import keras

    reader = None
    if keras.backend.backend() == "tensorflow" and variables:
        import tensorflow as tf

        reader = None if tf.distribute.has_strategy() else _reader_of(variables)
    if reader is None:
        return [keras.ops.convert_to_numpy(v) for v in variables]
    return [t.numpy() for t in reader()]


_READERS_KEPT = 8  # variable lists counted or with a traced reader (which keeps its variables, and so its model)
_TRACED_FROM_READ = 3  # a list's read that first goes through a traced reader


@dataclass
class _Reader:
    reads: int = 0
    function: Optional[Callable[[], Any]] = None  # holds the variables: their ids cannot be reused meanwhile


_readers: "OrderedDict[Tuple[int, ...], _Reader]" = OrderedDict()


def _reader_of(variables: Sequence[Any]) -> Optional[Callable[[], Any]]:
    """The traced reader of this list from its third read on; None before. Until then a list is only counted, by
    its variables' ids, and not kept alive: should those ids come back on other variables, the count is only early,
    and a reader is always traced on the variables it is given."""
    import tensorflow as tf

    key = tuple(id(v) for v in variables)
    entry = _readers.setdefault(key, _Reader())
    _readers.move_to_end(key)
    while len(_readers) > _READERS_KEPT:
        _readers.popitem(last=False)
    entry.reads += 1
    if entry.function is None and entry.reads >= _TRACED_FROM_READ:
        kept = list(variables)
        entry.function = tf.function(lambda: [tf.identity(v.value) for v in kept], autograph=False)
    return entry.function


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
