"""Checkpoints of a run: the last finished epoch (weights and optimizer state), the one before it, and the best.

Each epoch's files get new names and ``state.json`` is replaced atomically last, so a process killed at
any instant leaves a state that names complete files of one finished epoch. The state also keeps every
finished epoch's metrics, so a resumed run can log what the killed one had no time to.

The state records the SHA-256 and size of every file it names, and a checksum of itself, so that resume
trusts nothing a bad copy or a failing disk changed. It also holds the previous epoch's state, whose files
are kept until the next commit: when the newest checkpoint is damaged, resume falls back to that one.

A checkpoint is one ``.npz`` of variable values in the order the model and optimizer list them (with
their paths, for people; shapes are checked on load): for a small network it is written in milliseconds where a ``.keras``
file takes most of a second, which would slow a short epoch by half.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from resnet_lab.errors import CheckpointDamaged, DataError, DiskFull
from resnet_lab.runtime.backend import variable_values

STATE_FILE = "state.json"
CHECKSUM_KEY = "sha256"  # in state.json: the checksum of the state's other keys


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
    files: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # each named file's "sha256" and "bytes"
    previous: Optional[Dict[str, Any]] = None  # the state one epoch earlier: what resume falls back to

    def named_files(self) -> List[str]:
        return [name for name in (self.last, self.best) if name is not None]

    def snapshot(self) -> Optional[Dict[str, Any]]:
        """This state as the next one's ``previous`` (without its own previous); None before any epoch."""
        return {**asdict(self), "previous": None} if self.epochs_done else None


def _checksum(fields: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def state_text(state: CheckpointState) -> str:
    fields = asdict(state)
    return json.dumps({**fields, CHECKSUM_KEY: _checksum(fields)}, indent=1)


def load_state(folder: Path) -> Optional[CheckpointState]:
    """The committed state, None when no epoch was committed; a state.json that changed after it was
    written (or is not one) raises CheckpointDamaged. A state written before checksums loads unchecked."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        fields = json.loads(path.read_text())
        recorded = fields.pop(CHECKSUM_KEY, None)
        state = CheckpointState(**fields)
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, not an object, or other keys
        raise _damaged_state(path, f"it is not a checkpoint state ({exc})") from exc
    if recorded is not None and recorded != _checksum(fields):
        raise _damaged_state(path, "its checksum differs from the one recorded: it changed after it was written")
    return state


def _damaged_state(path: Path, reason: str) -> CheckpointDamaged:
    return CheckpointDamaged(f"the checkpoint state {path} is damaged: {reason}; no epoch of it can be trusted: "
                             f"start the run anew with trainer.resume=false")


def file_record(data: bytes) -> Dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def damage(folder: Path, state: CheckpointState) -> Optional[str]:
    """What is wrong with the first file of ``state`` that is not as it was written; None when all are."""
    for name in state.named_files():
        recorded, path = state.files.get(name), folder / name
        if not path.is_file():
            return f"{path} is missing"
        if recorded is None:  # written before checksums: nothing to compare
            continue
        size = path.stat().st_size
        if size != recorded["bytes"]:
            return f"{path} has {size:,} bytes where {recorded['bytes']:,} were written"
        with open(path, "rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != recorded["sha256"]:
                return f"{path} has another SHA-256 than the one recorded: it changed after it was written"
    return None


@dataclass(frozen=True)
class ResumePoint:
    """The verified state to resume from, and what was given up to reach it."""

    state: Optional[CheckpointState]  # None: no epoch was committed, the run starts from its first
    damage: Optional[str] = None  # the damaged newest checkpoint, when resume fell back
    redone: List[int] = field(default_factory=list)  # epochs that checkpoint had finished: trained again

    def fallback_line(self) -> str:
        first, last = self.redone[0], self.redone[-1]
        epochs = f"epoch {first} is" if first == last else f"epochs {first}-{last} are"
        return (f"checkpoint damaged: {self.damage}; resuming from epoch {self.state.epochs_done}, the newest good "
                f"checkpoint: {epochs} trained again")


def resume_point(folder: Path) -> ResumePoint:
    """Verify the checkpoints before anything depends on them: the newest when it is whole, else the one
    before it; CheckpointDamaged when neither can be trusted."""
    state = load_state(folder)
    if state is None:
        return ResumePoint(None)
    found = damage(folder, state)
    if found is None:
        return ResumePoint(state)
    fallback = CheckpointState(**state.previous) if state.previous else None
    also = damage(folder, fallback) if fallback is not None else "there is none"
    if also is not None:
        raise CheckpointDamaged(f"no good checkpoint to resume from: {found}; the one before it: {also}. "
                                f"Start the run anew with trainer.resume=false")
    return ResumePoint(fallback, found, list(range(fallback.epochs_done + 1, state.epochs_done + 1)))


def training_variables(model: Any) -> List[Any]:
    """Everything a resumed run needs: weights, BN statistics, and the optimizer's state and step count."""
    return list(model.weights) + list(model.optimizer.variables)


def room_needed(model: Any) -> int:
    """Bytes the checkpoints of one epoch can take at once: its full state and best weights, twice, as the
    previous epoch's stay until the next commit. Measured by building them, as headers and names count too."""
    variables = training_variables(model)
    values = variable_values(variables)
    weights = len(model.weights)  # the first of the training variables
    return 2 * (len(npz_bytes(variables, values)) + len(npz_bytes(variables[:weights], values[:weights])))


def npz_bytes(variables: Sequence[Any], values: Optional[Sequence[np.ndarray]] = None) -> bytes:
    """The checkpoint file's bytes, built in memory, so that a full disk can be told what the write needed.
    ``values``: the variables' values when already read."""
    values = variable_values(variables) if values is None else values
    buffer = io.BytesIO()
    np.savez(buffer, paths=np.array([v.path for v in variables]), **{f"v{i:05d}": a for i, a in enumerate(values)})
    return buffer.getvalue()


def save_variables(path: Path, variables: Sequence[Any], values: Optional[Sequence[np.ndarray]] = None
                   ) -> Dict[str, Any]:
    """Write the checkpoint; returns its SHA-256 and size."""
    data = npz_bytes(variables, values)
    write_file(path, data)
    return file_record(data)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data``; a full disk removes the partial file and raises DiskFull with the sizes."""
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        path.unlink(missing_ok=True)  # a partial file only takes the space a retry needs
        raise DiskFull(path.parent, path.name, len(data), shutil.disk_usage(path.parent).free) from exc


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
        """Checkpoint epoch ``epoch`` (1-based) with its metrics; returns True when training should stop.

        On a full disk the files of this epoch are removed and the last committed state stays as it was."""
        committed = self.state.epochs_done
        try:
            return self._checkpoint(model, epoch, record)
        except DiskFull as exc:
            self._remove_uncommitted()
            kept = f"the checkpoint of epoch {committed} is kept" if committed else "no epoch was checkpointed yet"
            free = shutil.disk_usage(self.folder).free  # once this epoch's files are gone again
            raise DiskFull(exc.folder, exc.what, exc.needed, free, (*exc.notes, kept)) from exc

    def _checkpoint(self, model: Any, epoch: int, record: Dict[str, float]) -> bool:
        state = self.state
        state.previous = state.snapshot()
        state.files = {}
        variables = training_variables(model)
        values = variable_values(variables)  # read once: the best checkpoint holds the first of them
        weights = len(model.weights)
        value = record.get(self.monitor)
        if value is not None and math.isfinite(value):
            if state.best_value is None or self._better(value, state.best_value):
                state.improved_epoch = epoch
            # On a plateau the later epoch wins: same monitored value, more training.
            if state.best_value is None or value == state.best_value or self._better(value, state.best_value):
                state.best, state.best_epoch, state.best_value = f"best-{epoch:04d}.npz", epoch, float(value)
                state.files[state.best] = save_variables(self.folder / state.best, variables[:weights],
                                                         values[:weights])
        if state.best is not None and state.best not in state.files:  # an earlier best: its record goes on
            state.files[state.best] = (state.previous or {}).get("files", {}).get(state.best)
        state.last = f"epoch-{epoch:04d}.npz"
        state.files[state.last] = save_variables(self.folder / state.last, variables, values)
        state.epochs_done = epoch
        state.history.append({k: float(v) for k, v in record.items()})
        state.stopped_early = bool(self.patience and epoch - state.improved_epoch >= self.patience)
        self._commit()
        return state.stopped_early

    def _better(self, value: float, than: float) -> bool:
        return value < than if mode_of(self.monitor) == "min" else value > than

    def _commit(self) -> None:
        temporary = self.folder / (STATE_FILE + ".tmp")
        write_file(temporary, state_text(self.state).encode())
        os.replace(temporary, self.folder / STATE_FILE)  # the commit point
        self._remove_uncommitted()

    def _remove_uncommitted(self) -> None:
        """Remove every checkpoint file that the committed state (or the one before it) does not name."""
        committed = load_state(self.folder)
        keep = set(committed.named_files()) if committed else set()
        if committed is not None and committed.previous:
            keep |= set(CheckpointState(**committed.previous).named_files())
        for path in self.folder.iterdir():
            if path.name not in keep and (path.name.startswith(("epoch-", "best-")) or path.name.endswith(".tmp")):
                path.unlink(missing_ok=True)
