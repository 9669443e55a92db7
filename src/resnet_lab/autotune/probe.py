"""Timing the candidate settings (precision, XLA) on the run's own model, batch and input.

Each candidate is built and compiled the way the run builds it, then fitted for a few steps on the
run's training images. The static choice is timed in the run's own process and its steps leave no
trace: every variable (weights, optimizer state, step count, random-generator state) is put back, so
when it wins, its model, already compiled, is the one the run trains, and the run computes what an
unprobed one does. On a CPU with TensorFlow the other candidates are timed by a worker process
(``worker``: XLA would slow the run's own process), elsewhere here; a winner other than the
static choice is then built afresh from the run's seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from resnet_lab.autotune import settings
from resnet_lab.autotune.settings import Decision, Measurement, Setting
from resnet_lab.autotune.timing import time_setting

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a probe leaves: the decision, the winner's built model, and whether every candidate ran."""

    decision: Decision
    built: Any
    complete: bool
    seconds: float
    builds: Dict[Setting, Any] = field(default_factory=dict)
    start_to_first_step_s: Optional[float] = None  # process age at the probe's first step


WORKER_FAILED = "the probe's worker"  # how a worker's failure or timeout is reported
# What a worker process is assumed to take to start (imports) when this process's own start is unknown;
# it is also the most assumed.
WORKER_START_S = 15.0
# Times settings in another process: (settings, measured so far, seconds spent) -> (their measurements,
# why it stopped early or None).
Elsewhere = Callable[[Sequence[Setting], Sequence[Measurement], float], Tuple[List[Measurement], Optional[str]]]


def probe(candidates: Sequence[Setting], static: Setting, build: Callable[[Setting], Any],
          model_of: Callable[[Any], Any], x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
          total_steps: int, max_seconds: float, keep_all: bool = False,
          elsewhere: Optional[Elsewhere] = None) -> Outcome:
    """Time ``candidates`` (the static choice first) while the budget allows; the fastest wins.

    ``build(candidate)`` returns what the run trains with (seeded, built, compiled), ``model_of``
    the Keras model in it. The static choice is timed here, and its build kept: the run trains it
    when it wins, and its set-up is not counted against the budget. The other candidates are timed
    here too, or by ``elsewhere`` (another process), and the winner is then built here. With
    ``keep_all`` (the benchmark) every candidate is timed whatever the budget.
    """
    started = time.perf_counter()
    static_built, first, timing = time_setting(static, build, model_of, x, y, batch_size, seed)
    measured, builds = [first], {static: static_built}
    spent, stopped, first_age = timing["steps_s"], None, timing["process_age_s"]
    others = [c for c in candidates if c != static]
    if others and elsewhere is not None:
        more, stopped = elsewhere(others, measured, spent)
        measured += more
    for candidate in others if elsewhere is None else []:
        if not keep_all:
            stopped = settings.next_within_budget(candidate, measured, spent, total_steps, batch_size, max_seconds)
            if stopped:
                break
        built, measurement, timing = time_setting(candidate, build, model_of, x, y, batch_size, seed)
        measured.append(measurement)
        spent += timing["steps_s"] + measurement.setup_s
        builds[candidate] = built
        if not keep_all:  # keep only what can still win: the static choice and the fastest so far
            best = max(measured, key=lambda m: m.images_per_s).setting
            builds = {c: b for c, b in builds.items() if c in (static, best)}
    choice = settings.fastest(measured, static)
    if choice not in builds:  # timed in another process
        builds[choice] = build(choice)
    if not keep_all:  # the losers' models go, not to be held through training
        builds = {choice: builds[choice]}
    seconds = time.perf_counter() - started
    return Outcome(_decision(measured, candidates, static, choice, stopped, seconds), builds[choice],
                   len(measured) == len(candidates), seconds, builds, first_age)


def _decision(measured: Sequence[Measurement], candidates: Sequence[Setting], static: Setting, choice: Setting,
              stopped: Optional[str], seconds: float) -> Decision:
    if len(measured) == 1:
        failed = stopped is not None and stopped.startswith(WORKER_FAILED)
        reason = stopped if failed else f"a probe would not pay for itself: {stopped}"
        return Decision(choice, settings.STATIC, reason, tuple(measured))
    complete = len(measured) == len(candidates)
    of = "" if complete else f" of {len(candidates)}; stopped: {stopped}"
    reason = f"fastest of {len(measured)} candidates timed in {seconds:.0f} s{of}"
    if choice == static and max(measured, key=lambda m: m.images_per_s).setting != static:
        reason += f" (within {settings.MARGIN:.0%} of it: the static choice)"
    return Decision(choice, settings.PROBED, reason, tuple(measured))


def step_signature(cfg: Any, image_shape: Sequence[int], num_classes: int) -> Dict[str, Any]:
    """What a training step computes, for the cache key: the network, its augmentation, the optimizer's
    kind (not its rates), the input and the batch."""
    from omegaconf import OmegaConf

    model = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("name", "reference"):  # presets with the same network share their entry
        model.pop(key, None)
    return {"model": model, "augment": OmegaConf.to_container(cfg.data.augment, resolve=True),
            "optimizer": [cfg.optimizer.name, cfg.optimizer.weight_decay_mode],
            "input": [int(d) for d in image_shape], "classes": int(num_classes),
            "batch_size": int(cfg.trainer.batch_size)}


def choose(trainer: Any, signature: Dict[str, Any], build: Callable[[Setting], Any],
           model_of: Callable[[Any], Any], x: np.ndarray, y: np.ndarray, seed: int, total_steps: int,
           resumed: Optional[Setting] = None, distributed: bool = False, measure_all: bool = False,
           recipe: Optional[Any] = None) -> Outcome:
    """The setting a run trains with, and its model built in it.

    In order: a resumed run keeps its first setting; explicit ``trainer.precision`` and
    ``trainer.jit_compile`` (or hardware that allows one setting) leave nothing to choose; with
    ``trainer.autotune=false``, deterministic ops or a distributed run the static choice holds; then
    the cache of earlier probes on this machine; a run too short to repay a probe takes the static
    choice; else the probe times the candidates. ``signature`` describes the model's training step
    for the cache key. ``measure_all`` (the benchmark) times every candidate, cache or not.
    ``recipe`` (the run's ``training.build.Recipe``) lets a worker process time the candidates other than the
    static choice, which on a CPU with TensorFlow it does: see ``worker``.
    """
    from resnet_lab.runtime import machine

    started = time.perf_counter()
    hardware = machine.hardware()
    static = settings.static_choice(hardware, trainer.precision, trainer.jit_compile, trainer.deterministic,
                                    distributed)
    options = settings.candidates(hardware, trainer.precision, trainer.jit_compile, trainer.deterministic,
                                  distributed)

    def settled(choice: Setting, how: str, reason: str, measurements=()) -> Outcome:
        built = build(choice)
        return Outcome(Decision(choice, how, reason, tuple(measurements)), built, True,
                       time.perf_counter() - started)

    if resumed is not None:
        return settled(resumed, settings.RESUMED, "a resumed run keeps the setting it started with")
    if trainer.precision != "auto" and trainer.jit_compile is not None:
        return settled(static, settings.CONFIGURED, f"trainer.precision={trainer.precision}, "
                                                    f"trainer.jit_compile={trainer.jit_compile}")
    if len(options) == 1:
        return settled(static, settings.STATIC, f"the only setting the config allows on this {_device(hardware)}")
    if not trainer.autotune:
        return settled(static, settings.STATIC, "trainer.autotune=false")
    if trainer.deterministic:
        return settled(static, settings.STATIC, "trainer.deterministic=true: a choice that depends on timing "
                                                "would not give the same metrics every time")
    if distributed:
        return settled(static, settings.STATIC, f"trainer.distribution={trainer.distribution} is not probed")
    folder = settings.cache_dir(trainer.autotune_cache)
    described = {"machine": machine.machine_fingerprint(), "step": signature,
                 "candidates": [c.label() for c in options]}
    key = settings.cache_key(**described)
    cached = None if measure_all else settings.read_cached(folder, key)
    if cached is not None and cached[0] in options:
        return settled(cached[0], settings.CACHED, f"timed by an earlier run on this machine ({folder / key}.json)",
                       cached[1])
    short = None if measure_all else settings.too_short(total_steps)
    if short:
        return settled(static, settings.STATIC, short)
    elsewhere = None
    if recipe is not None and hardware.backend == "tensorflow" and hardware.accelerator is None:
        from resnet_lab.autotune.worker import time_elsewhere

        start_estimate = min(machine.process_age_seconds() or WORKER_START_S, WORKER_START_S)
        elsewhere = time_elsewhere(recipe, x, y, seed, total_steps, trainer.autotune_max_seconds, measure_all,
                                   start_estimate)
    outcome = probe(options, static, build, model_of, x, y, signature["batch_size"], seed, total_steps,
                    trainer.autotune_max_seconds, keep_all=measure_all, elsewhere=elsewhere)
    if outcome.complete:
        settings.write_cached(folder, key, outcome.decision.choice, outcome.decision.measurements, described)
    return outcome


def _device(hardware: Any) -> str:
    if hardware.accelerator:
        return f"{hardware.accelerator} ({hardware.backend})"
    return f"CPU ({hardware.backend}{', native bf16' if hardware.bf16 else ', no native bf16'})"
