"""Timing a fit: the clock on its steps, and the timed fits of the probe, its worker and the benchmark.

Everything that times training goes through ``timed_fit``, so a candidate is timed exactly as the
benchmark times a model and as a run trains it (the same input feed, the same callbacks' cost).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from resnet_lab.autotune import settings
from resnet_lab.autotune.settings import Measurement, Setting
from resnet_lab.data.feeding import training_feed
from resnet_lab.runtime.backend import variable_values
from resnet_lab.runtime.machine import process_age_seconds

log = logging.getLogger(__name__)

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


def timed_fit(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, callbacks: Sequence[Any] = (),
              as_training: bool = True) -> StepClock:
    """One epoch over ``x``, timed. ``as_training`` feeds it as a training run does (``data.feeding``);
    otherwise the arrays go to ``fit`` the usual way, as a plain Keras user would (a baseline)."""
    clock = StepClock()
    data = training_feed(x, y, batch_size, seed) if as_training else {
        "x": x, "y": y, "batch_size": batch_size, "shuffle": True}
    model.fit(**data, epochs=1, verbose=0, callbacks=[*callbacks, clock])
    clock.returned = time.perf_counter()
    return clock


def time_steps(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Dict[str, float]:
    """Fit ``model`` for ``WARMUP_STEPS + TIMED_STEPS`` steps as a run feeds it; restore its state.

    Returns the first step's seconds (tracing and compiling), the median images/s of the timed steps
    and the seconds the steps after the first took.
    """
    steps = settings.WARMUP_STEPS + settings.TIMED_STEPS
    index = np.arange(steps * batch_size) % len(y)
    saved = _snapshot(model)
    try:
        clock = timed_fit(model, x[index], y[index], batch_size, seed)
    finally:
        _restore(model, saved)
    seconds = clock.step_seconds()
    timed = seconds[settings.WARMUP_STEPS:]
    return {"first_step_s": seconds[0], "images_per_s": batch_size / statistics.median(timed),
            "steps_s": sum(seconds[1:]), "process_age_s": clock.process_age_at_first_step}


def time_setting(setting: Setting, build: Callable[[Setting], Any], model_of: Callable[[Any], Any], x: np.ndarray,
                 y: np.ndarray, batch_size: int, seed: int) -> Tuple[Any, Measurement, Dict[str, float]]:
    """Build ``setting`` and time its steps: the build, its measurement (set-up includes the build) and
    the raw timings."""
    t0 = time.perf_counter()
    built = build(setting)
    build_s = time.perf_counter() - t0
    timing = time_steps(model_of(built), x, y, batch_size, seed)
    measurement = Measurement(setting, timing["images_per_s"], build_s + timing["first_step_s"])
    log.debug("autotune: %s %.1f images/s, set-up %.1f s", setting.label(), measurement.images_per_s,
              measurement.setup_s)
    return built, measurement, timing


def _snapshot(model: Any) -> List[Any]:
    """Every variable a fit changes, with its value: the model's (weights, batch-norm statistics,
    random-generator state) and the optimizer's (slots, step count, loss scale)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = list({id(v): v for v in [*model.variables, *model.optimizer.variables]}.values())
    return [(variable, np.array(value, copy=True)) for variable, value in zip(variables, variable_values(variables))]


def _restore(model: Any, saved: List[Any]) -> None:
    for variable, value in saved:
        variable.assign(value)
