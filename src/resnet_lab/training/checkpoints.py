"""Checkpoints of a run: the last finished epoch (weights and optimizer state) and the best one.

Each epoch's files get new names and ``state.json`` is replaced atomically last, so a process killed at
any instant leaves a state that names complete files of one finished epoch. The state also keeps every
finished epoch's metrics, so a resumed run can log what the killed one had no time to.

A checkpoint is one ``.npz`` of variable values in the order the model and optimizer list them (with
their paths, for people; shapes are checked on load): for a small network it is written in milliseconds where a ``.keras``
file takes most of a second, which would slow a short epoch by half.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from resnet_lab.errors import DataError

STATE_FILE = "state.json"


@dataclass
class CheckpointState:
    epochs_done: int = 0  # finished epochs; training resumes with the next one
    history: List[Dict[str, float]] = field(default_factory=list)  # one metrics record per finished epoch
    last: Optional[str] = None  # file of the last finished epoch: model weights and optimizer state
    best: Optional[str] = None  # weights file of the best epoch by the monitored metric
    best_epoch: int = 0
    best_value: Optional[float] = None
    improved_epoch: int = 0  # last epoch that strictly improved the monitor: early stopping counts from it
    stopped_early: bool = False


def load_state(folder: Path) -> Optional[CheckpointState]:
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    return CheckpointState(**json.loads(path.read_text()))


def training_variables(model: Any) -> List[Any]:
    """Everything a resumed run needs: weights, BN statistics, and the optimizer's state and step count."""
    return list(model.weights) + list(model.optimizer.variables)


def save_variables(path: Path, variables: Sequence[Any]) -> None:
    from keras import ops

    arrays = {f"v{i:05d}": ops.convert_to_numpy(v) for i, v in enumerate(variables)}
    with open(path, "wb") as handle:
        np.savez(handle, paths=np.array([v.path for v in variables]), **arrays)


def load_variables(path: Path, variables: Sequence[Any]) -> None:
    with np.load(path, allow_pickle=False) as saved:
        # Paths are not compared: Keras numbers names per process ("adam_1"); count and shapes must agree.
        arrays = [saved[f"v{i:05d}"] for i in range(len(saved.files) - 1)]
        if [a.shape for a in arrays] != [tuple(v.shape) for v in variables]:
            raise DataError(f"the checkpoint {path} holds other variables than this model and optimizer; "
                            f"it belongs to another config")
        for variable, array in zip(variables, arrays):
            variable.assign(array)


def mode_of(monitor: str) -> str:
    """Whether a bigger value of the monitored metric is better."""
    return "min" if monitor.endswith("loss") else "max"


class Checkpointer:
    """Writes the checkpoints after each epoch and decides early stopping."""

    def __init__(self, folder: Path, monitor: str, patience: Optional[int],
                 state: Optional[CheckpointState] = None) -> None:
        self.folder, self.monitor, self.patience = folder, monitor, patience
        self.state = state or CheckpointState()
        folder.mkdir(parents=True, exist_ok=True)

    def epoch_end(self, model: Any, epoch: int, record: Dict[str, float]) -> bool:
        """Checkpoint epoch ``epoch`` (1-based) with its metrics; returns True when training should stop."""
        state = self.state
        value = record.get(self.monitor)
        if value is not None and math.isfinite(value):
            if state.best_value is None or self._better(value, state.best_value):
                state.improved_epoch = epoch
            # On a plateau the later epoch wins: same monitored value, more training.
            if state.best_value is None or value == state.best_value or self._better(value, state.best_value):
                state.best, state.best_epoch, state.best_value = f"best-{epoch:04d}.npz", epoch, float(value)
                save_variables(self.folder / state.best, model.weights)
        state.last = f"epoch-{epoch:04d}.npz"
        save_variables(self.folder / state.last, training_variables(model))
        state.epochs_done = epoch
        state.history.append({k: float(v) for k, v in record.items()})
        state.stopped_early = bool(self.patience and epoch - state.improved_epoch >= self.patience)
        self._commit()
        return state.stopped_early

    def _better(self, value: float, than: float) -> bool:
        return value < than if mode_of(self.monitor) == "min" else value > than

    def _commit(self) -> None:
        temporary = self.folder / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(asdict(self.state), indent=1))
        os.replace(temporary, self.folder / STATE_FILE)  # the commit point
        keep = {self.state.last, self.state.best, STATE_FILE}
        for path in self.folder.iterdir():
            if path.name not in keep and (path.name.startswith(("epoch-", "best-")) or path.name.endswith(".tmp")):
                path.unlink(missing_ok=True)
