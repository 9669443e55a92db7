"""Set-up shared by the seeds of one configuration in one process.

The jobs one process runs one after another (the basic launcher, joblib's reused workers, the rounds of
``until_resolved``) often differ only in ``seed``. The first of them builds, compiles, analyses and traces its
model; each later one with the same configuration takes that model, set to exactly what a fresh build from its
own seed holds (weights, BatchNorm statistics, optimizer state, loss scale, augmentation generators:
``reseed``), and trains through the functions already traced. A run cannot tell which way it was set up.

Shared only where that is proved or plain: never for a resumed run (it loads its checkpoint into a model of its
own), a distributed one (a model and its functions belong to one distribution scope), another backend than
TensorFlow (where it has not been proved), or a build ``reseed`` cannot replay. Each refusal is a debug line
(``RESNET_LAB_DEBUG=1``); ``RESNET_LAB_SHARED_SETUP=0`` turns sharing off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from resnet_lab.runtime import heap
from resnet_lab.training.reseed import Plan, plan_for

log = logging.getLogger(__name__)

MAX_KEPT = 4  # configurations a process keeps set up; the least recently used goes first
SWITCH = "RESNET_LAB_SHARED_SETUP"  # "0": every job builds its own model


@dataclass
class Shared:
    """One configuration's set-up: what the run trains with, the decision it was built in, how to reseed it."""

    built: Any  # ``steps.Built``
    decision: Any  # ``autotune.settings.Decision``
    plan: Plan


_kept: "OrderedDict[str, Shared]" = OrderedDict()


def key_of(cfg: DictConfig, recipe: Any) -> str:
    """Everything a build depends on but the seed: the config (tracking aside) and what the data gave it
    (shapes, normalization constants, steps per epoch), and the backend."""
    import keras

    config = OmegaConf.to_container(cfg, resolve=True)
    for unrelated in ("seed", "tracking"):
        config.pop(unrelated, None)
    normalization = recipe.normalization
    facts = {"config": config, "image_shape": recipe.image_shape, "num_classes": recipe.num_classes,
             "steps_per_epoch": recipe.steps_per_epoch, "augment": recipe.augment,
             "normalization": None if normalization is None else [list(map(float, normalization.mean)),
                                                                  list(map(float, normalization.std))],
             "backend": keras.backend.backend()}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def refusal(cfg: DictConfig, resumed: bool) -> Optional[str]:
    """Why this run builds its own model even if an earlier job set up the same configuration; None if it need not."""
    import keras

    if os.environ.get(SWITCH) == "0":
        return f"{SWITCH}=0"
    if resumed:
        return "a resumed run loads its checkpoint into a model of its own"
    if cfg.trainer.distribution != "none":
        return f"trainer.distribution={cfg.trainer.distribution}: a model belongs to its own distribution scope"
    if keras.backend.backend() != "tensorflow":
        return f"sharing set-up is proved on TensorFlow only, not on {keras.backend.backend()}"
    return None


def take(key: str, seed: int, deterministic: bool) -> Optional[Shared]:
    """The set-up an earlier job of this configuration made, reset to a fresh build from ``seed``; None if none."""
    from resnet_lab.runtime.backend import seed_everything

    shared = _kept.get(key)
    if shared is None:
        return None
    _kept.move_to_end(key)
    seed_everything(seed, deterministic)  # as the build would have: Python, NumPy and TensorFlow from this seed
    shared.plan.apply(seed)
    return shared


def keep(key: str, built: Any, decision: Any, draws: Any) -> None:
    """Keep a new set-up for the later seeds of its configuration, if its build can be replayed."""
    plan, why = (None, "its build did not say what it drew") if draws is None else plan_for(built.model, draws)
    if plan is None:
        log.debug("set-up not shared with later seeds: %s", why)
        return
    _kept[key] = Shared(built, decision, plan)
    _kept.move_to_end(key)
    while len(_kept) > MAX_KEPT:
        _kept.popitem(last=False)
        heap.release()
    heap.settle()  # the model and its traced functions stay: later full collections need not walk them


def forget() -> None:
    """Drop every kept set-up (tests, and a process that needs the memory back)."""
    _kept.clear()
    heap.release()
