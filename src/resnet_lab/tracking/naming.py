"""Readable run names from command-line overrides: ``resnet34-lr0.1-bs128``."""

from __future__ import annotations

from typing import Iterable, List, Sequence

# Short forms for the keys people sweep most; any other key is named by its last part.
SHORT_KEYS = {
    "optimizer.learning_rate": "lr",
    "trainer.batch_size": "bs",
    "trainer.epochs": "ep",
    "optimizer.weight_decay": "wd",
    "optimizer.momentum": "mom",
    "model.layer_dims": "dims",
    "model.widths": "w",
    "model.strides": "s",
    "model.stem.width": "stem",
    "model.head.dropout": "drop",
    "schedule.warmup_epochs": "warmup",
    "data.image_shape": "img",
}
# Keys that say where or how a run is reported, not what it is.
NOT_IN_NAME = ("tracking", "hydra", "trainer.verbose", "data.path", "experiment", "hparams_search")
GROUPS = ("model", "data", "optimizer", "schedule", "trainer", "tracking", "debug")  # `group=choice`: its value
MAX_LENGTH = 120  # MLflow keeps 250 characters; the UI's run list shows far fewer


def run_name(preset: str, overrides: Sequence[str], leave_out: Iterable[str] = ()) -> str:
    """``preset`` followed by a short ``keyvalue`` for each override that changes what the run computes.

    One rule for single runs and sweep jobs alike, so two runs whose configs differ are never named
    alike; ``leave_out`` drops keys as well (``group_name`` drops the seed).
    """
    dropped = {_bare(k) for k in leave_out}
    parts: List[str] = [preset]
    for override in overrides:
        key, sep, value = override.partition("=")
        key = _bare(key)
        if not sep or key == "model" or _excluded(key) or key in dropped:
            continue
        parts.append(_short(key, value))
    return "-".join(parts)[:MAX_LENGTH]


def group_name(preset: str, overrides: Sequence[str]) -> str:
    """The run name without the seed: what runs that repeat one configuration have in common."""
    return run_name(preset, overrides, leave_out=("seed",))


def _bare(key: str) -> str:
    return key.lstrip("+~")


def _excluded(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") or key.startswith(k + "/") for k in NOT_IN_NAME)


def _short(key: str, value: str) -> str:
    value = value.replace(" ", "").replace("'", "").replace('"', "")
    if "/" in key or key in GROUPS:  # a config group choice, such as model/block=bottleneck
        return value
    return SHORT_KEYS.get(key, key.rsplit(".", 1)[-1]) + value
