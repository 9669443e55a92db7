"""Keras callbacks that report a run to MLflow."""

from __future__ import annotations

import time
from typing import Optional

import keras

from resnet_lab.tracking import Run


class EpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics, learning rate and duration to the run, with step = epoch number."""

    def __init__(self, run: Optional[Run]) -> None:
        super().__init__()
        self.run = run
        self.epochs_done = 0
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        if self.run is None:
            return
        metrics = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        self.run.log_metrics(metrics, step=epoch + 1)
