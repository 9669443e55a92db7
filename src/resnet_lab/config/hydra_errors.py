"""Hydra's compose-time errors (unknown option, misspelt key, wrong type) as one line each.

Hydra prints these over several lines with hints about stack traces; a user who typed
``model=resnet19`` needs one line naming the key, the value received and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

_NOT_CONVERTED = re.compile(r"Value '(.*?)' (?:of type '\w+' )?could not be converted to (\w+)")


def one_line(exc: BaseException) -> str:
    if isinstance(exc, MissingConfigException):
        return _missing_option(exc)
    if isinstance(exc, OverrideParseException):
        return f"cannot read the override {exc.override!r}: {_first_line(exc.message)}"
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return _config_value(cause, exc)
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _missing_option(exc: MissingConfigException) -> str:
    missing = exc.missing_cfg_file or ""
    if exc.options and "/" in missing:
        group, name = missing.rsplit("/", 1)
        choices = ", ".join(repr(option) for option in sorted(exc.options))
        return f"{group}={name!r} is not allowed: one of {choices}"
    return _first_line(str(exc))


def _config_value(cause: OmegaConfBaseException, exc: BaseException) -> str:
    key = cause.full_key
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        allowed = _field_names(cause.object_type)
        hint = f"the keys here are {', '.join(allowed)}" if allowed else "a key the config defines"
        return f"{key} is not a config key: {hint}"
    if isinstance(cause, ValidationError):
        match = _NOT_CONVERTED.search(str(cause.msg))
        if match:
            return f"{key}={match.group(1)!r} is not allowed: a value of type {match.group(2).lower()}"
    return f"{key}: {_first_line(str(cause.msg))}"


def _field_names(object_type: Optional[type]) -> list:
    if object_type is not None and dataclasses.is_dataclass(object_type):
        return [f.name for f in dataclasses.fields(object_type)]
    return []


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)
