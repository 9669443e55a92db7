"""Errors caused by user input. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A mistake in what the user asked for (config, data, paths), not a bug."""


class ConfigError(UserError, ValueError):
    """A config value that is not allowed: names the key, the value received and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={_show(value)} is not allowed: {allowed}")


class DataError(UserError):
    """Data that cannot be read or does not match its config."""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
