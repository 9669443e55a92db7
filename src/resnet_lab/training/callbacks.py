"""Keras callbacks: stop on a diverged loss, checkpoint each epoch, report it to MLflow."""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, List, Optional

import keras

from resnet_lab.errors import TrainingDiverged
from resnet_lab.runtime.interrupts import uninterrupted
from resnet_lab.tracking import Run
from resnet_lab.training.checkpoints import Checkpointer


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raise as soon as a batch's loss is NaN or infinite: nothing after it can mean anything.

    ``async_safe`` lets Keras check each loss in a worker thread: reading it waits for its step, and
    done in the training loop that wait would stop an accelerator from queueing the next steps. Keras
    re-raises the error in the loop at its next step, so training stops one or two steps later.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(self.epoch, batch + 1, float(loss))


class EpochLogger(keras.callbacks.Callback):
    """After each epoch: validate (when given a ``validate``), checkpoint it (when a checkpointer is given), then
    log its metrics, learning rate and durations to the run with step = epoch number. The checkpoint comes first so
    that its state holds every epoch's metrics, even one whose logging a killed process never reached.

    ``validate(model)`` returns the epoch's ``val_*`` metrics; they join the epoch's logs, which the callbacks
    after this one (pruning reporters, Keras' history and progress line) read. ``epoch_seconds`` is the whole
    epoch; ``epoch_train_seconds`` its training steps alone (validation and this logging excluded), kept in
    ``train_seconds`` for the run's throughput.
    """

    def __init__(self, run: Optional[Run], checkpointer: Optional[Checkpointer] = None,
                 validate: Optional[Callable[[keras.Model], Dict[str, float]]] = None) -> None:
        super().__init__()
        self.run, self.checkpointer, self.validate = run, checkpointer, validate
        self.epochs_done = 0
        self.train_seconds: List[float] = []  # per epoch of this process
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    @uninterrupted  # an epoch is validated, checkpointed and logged whole, or not at all
    def on_epoch_end(self, epoch, logs=None):
        steps_ended = time.perf_counter()
        logs = {} if logs is None else logs
        if self.validate is not None:
            logs.update(self.validate(self.model))  # the same dict the later callbacks get
        self.epochs_done += 1
        metrics = {k: float(v) for k, v in logs.items() if k != "learning_rate"}
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        metrics["epoch_train_seconds"] = steps_ended - self._started
        self.train_seconds.append(metrics["epoch_train_seconds"])
        if self.checkpointer is not None and self.checkpointer.epoch_end(self.model, epoch + 1, metrics):
            self.model.stop_training = True
        if self.run is not None:
            self.run.log_metrics(metrics, step=epoch + 1)
