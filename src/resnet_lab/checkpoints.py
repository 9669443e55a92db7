"""Checkpoints of a run: the last finished epoch (weights and optimizer state) and the best one.

Each epoch's files get new names and ``state.json`` is replaced atomically last, so a process killed at
any instant leaves a state that names complete files of one finished epoch. The state also keeps every
finished epoch's metrics, so a resumed run can log what the killed one had no time to.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

STATE_FILE = "state.json"


@dataclass
class CheckpointState:
    epochs_done: int = 0  # finished epochs; training resumes with the next one
    history: List[Dict[str, float]] = field(default_factory=list)  # one metrics record per finished epoch
    last: Optional[str] = None  # file of the last finished epoch: model weights and optimizer state
    best: Optional[str] = None  # weights file of the best epoch by the monitored metric
    best_epoch: int = 0
    best_value: Optional[float] = None
    stopped_early: bool = False


def load_state(folder: Path) -> Optional[CheckpointState]:
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    return CheckpointState(**json.loads(path.read_text()))


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
        if value is not None and math.isfinite(value) and self._better(value):
            state.best, state.best_epoch, state.best_value = f"best-{epoch:04d}.weights.h5", epoch, float(value)
            model.save_weights(self.folder / state.best)
        state.last = f"epoch-{epoch:04d}.keras"
        model.save(self.folder / state.last)
        state.epochs_done = epoch
        state.history.append({k: float(v) for k, v in record.items()})
        state.stopped_early = bool(self.patience and epoch - state.best_epoch >= self.patience)
        self._commit()
        return state.stopped_early

    def _better(self, value: float) -> bool:
        best = self.state.best_value
        if best is None:
            return True
        return value < best if mode_of(self.monitor) == "min" else value > best

    def _commit(self) -> None:
        temporary = self.folder / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(asdict(self.state), indent=1))
        os.replace(temporary, self.folder / STATE_FILE)  # the commit point
        keep = {self.state.last, self.state.best, STATE_FILE}
        for path in self.folder.iterdir():
            if path.name not in keep and (path.name.startswith(("epoch-", "best-")) or path.name.endswith(".tmp")):
                path.unlink(missing_ok=True)
