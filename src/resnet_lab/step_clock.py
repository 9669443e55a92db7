"""A Keras callback that times training steps without slowing the loop it times."""

from __future__ import annotations

import time
from typing import List, Optional

import keras

from resnet_lab.runtime import process_age_seconds


class StepClock(keras.callbacks.Callback):
    """Times each step from its start to the moment its loss exists, and the fit as a whole.

    ``async_safe`` lets Keras run ``on_train_batch_end`` in a worker thread, where the logs are
    turned into Python numbers (which waits for that step to finish): the training loop keeps
    dispatching steps ahead, as it does without this callback, so asynchronous backends (JAX on
    a GPU) are timed at their real pace.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.begin: Optional[float] = None
        self.ends: List[float] = []
        self.end: Optional[float] = None
        self.returned: Optional[float] = None  # set by the caller once fit has returned
        self.process_age_at_first_step: Optional[float] = None  # the command's start-up cost

    def on_train_batch_begin(self, batch, logs=None):
        if self.begin is None:
            self.begin = time.perf_counter()
            self.process_age_at_first_step = process_age_seconds()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())  # list.append is atomic: safe from worker threads

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()  # after the epoch's other callbacks (MLflow logging) have run

    def step_seconds(self) -> List[float]:
        marks = [self.begin, *sorted(self.ends)]
        return [b - a for a, b in zip(marks, marks[1:])]

    def window_seconds(self) -> float:
        """First step's start to the end of the fit: epoch-end callbacks included, and the input
        pipeline's teardown too where the caller noted when ``fit`` returned."""
        return (self.returned or self.end) - self.begin
