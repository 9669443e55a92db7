"""Errors caused by user input, and the checks that raise them. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from typing import Any, Optional, Sequence


class UserError(Exception):
    """A mistake in what the user asked for (config, data, paths), not a bug."""


class ConfigError(UserError, ValueError):
    """A config value that is not allowed: names the key, the value received and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={_show(value)} is not allowed: {allowed}")


class DataError(UserError):
    """Data that cannot be read or does not match its config."""


class DiskFull(UserError):
    """A write found its disk full: names the folder, what the write needed and what is free; ``notes`` say
    what was kept and how to go on, as the layers above learn it."""

    def __init__(self, folder: Any, what: str, needed: Optional[int], free: int, notes: Sequence[str] = ()) -> None:
        self.folder, self.what, self.needed, self.free, self.notes = folder, what, needed, free, tuple(notes)
        need = f" needed {needed:,} bytes and" if needed is not None else " failed:"
        super().__init__("; ".join([f"no space left in {folder}: writing {what}{need} {free:,} bytes are free",
                                    *self.notes]))

    def with_note(self, note: str) -> "DiskFull":
        return DiskFull(self.folder, self.what, self.needed, self.free, (*self.notes, note))


class CheckpointDamaged(DataError):
    """No checkpoint of a run to resume can be trusted: names the file and what is wrong with it."""


class StoreDamaged(UserError):
    """The MLflow store cannot be opened: names the store and the cause."""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the run stops and is FAILED with the epoch."""

    def __init__(self, epoch: int, batch: int, loss: float) -> None:
        self.epoch, self.batch, self.loss = epoch, batch, loss
        super().__init__(f"the training loss became {loss} at epoch {epoch} (batch {batch}); lower "
                         f"optimizer.learning_rate or set optimizer.clipnorm")


def require_choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    """``value`` must be one of ``allowed``; the error lists them."""
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(repr(a) for a in allowed))


def require_positive(key: str, value: Any) -> None:
    """``value`` must be a positive integer (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(key, value, "a positive integer")


def require_fraction(key: str, value: float, allowed: str) -> None:
    """``value`` must lie in [0, 1); ``allowed`` says so in the key's own words."""
    if not 0.0 <= value < 1.0:
        raise ConfigError(key, value, allowed)
