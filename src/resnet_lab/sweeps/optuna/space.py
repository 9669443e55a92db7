"""The search space: ``hydra.sweeper.params`` and sweep overrides on the command line, read as Optuna
distributions, in the syntax of Hydra's own Optuna sweeper.

========================================  ====================================================
``interval(1e-4, 1e-1)``                  a float between the two, uniformly
``tag(log, interval(1e-4, 1e-1))``        a float, uniformly on a log scale
``tag(int, interval(1, 8))``              an integer (``tag(int, log, interval(...))`` too)
``choice(32, 64, 128)`` or ``32,64,128``  one of the values (numbers, strings, lists)
``range(1, 9, 2)``                        one of 1, 3, 5, 7 (the end is left out, as in Python)
``5``                                     a fixed value, given to every trial
========================================  ====================================================

The command line wins over ``params``; a key swept nowhere is a fixed override of every trial.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence

from omegaconf import DictConfig

from resnet_lab.errors import ConfigError

FORMS = ("interval(a, b), tag(log, interval(a, b)), tag(int, interval(a, b)), choice(a, b, ...) or a,b,..., "
         "range(start, stop[, step]), or one value")


@dataclass
class Space:
    """What a trial draws (key -> Optuna distribution) and what every trial is given (overrides)."""

    distributions: "OrderedDict[str, Any]" = field(default_factory=OrderedDict)
    texts: Dict[str, str] = field(default_factory=dict)  # each drawn key as the user wrote it
    fixed: List[str] = field(default_factory=list)
    literal: Dict[str, set] = field(default_factory=dict)  # per key, the choices stored as override text (lists)

    def to_json(self) -> Dict[str, str]:
        """Each distribution as Optuna writes it: what a stored study is compared with."""
        from optuna.distributions import distribution_to_json

        return {key: distribution_to_json(dist) for key, dist in self.distributions.items()}

    def overrides(self, params: Mapping[str, Any]) -> List[str]:
        """A trial's overrides: the fixed ones, then each drawn value as Hydra reads it back exactly."""
        return [*self.fixed, *(f"{key}={self.text_of(key, params[key])}" for key in self.distributions)]

    def text_of(self, key: str, value: Any) -> str:
        return value if value in self.literal.get(key, ()) else hydra_text(value)


def parse_space(params: Mapping[str, Any], arguments: Sequence[str]) -> Space:
    """Read ``params`` (key -> text) and the command line's overrides into a ``Space``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    lines = [(f"hydra.sweeper.params.{key}", f"{key}={value}") for key, value in params.items()]
    lines += [(arg.partition("=")[0], arg) for arg in arguments]
    final: "OrderedDict[str, Any]" = OrderedDict()
    names: Dict[str, str] = {}
    for name, line in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as exc:
            raise ConfigError(name, line.partition("=")[2], f"{FORMS} ({str(exc).splitlines()[0]})") from None
        final[override.get_key_element()] = override  # the command line, read last, wins
        names[override.get_key_element()] = name
    space = Space()
    for key, override in final.items():
        if not override.is_sweep_override():
            space.fixed.append(override.input_line)
            continue
        space.distributions[key] = distribution_of(names[key], override)
        if override.is_choice_sweep():
            space.literal[key] = {storable(v) for v in override.sweep_iterator() if storable(v) is not v}
        space.texts[key] = override.input_line.partition("=")[2]
    return space


def distribution_of(name: str, override: Any) -> Any:
    """One swept override (``name``: where it was given) as an Optuna distribution; a form Optuna cannot draw
    from is a ConfigError."""
    from hydra.core.override_parser.types import Glob
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    text = override.input_line.partition("=")[2]
    value = override.value()
    try:
        if override.is_interval_sweep():
            tags = set(value.tags)
            unknown = tags - {"log", "int"}
            if unknown:
                raise ConfigError(name, text, f"{FORMS}; the tags an interval takes are log and int, not "
                                  f"{', '.join(sorted(unknown))}")
            if "int" in tags:
                low, high = value.start, value.end
                if not (float(low).is_integer() and float(high).is_integer()):
                    raise ConfigError(name, text, "whole numbers as the ends of tag(int, interval(a, b))")
                return IntDistribution(int(low), int(high), log="log" in tags)
            return FloatDistribution(float(value.start), float(value.end), log="log" in tags)
        if override.is_range_sweep():
            if value.shuffle:
                raise ConfigError(name, text, f"{FORMS}; shuffle() draws nothing a sampler can use")
            values = list(override.sweep_iterator())
            if not values:
                raise ConfigError(name, text, "a range with at least one value (start below stop)")
            step = value.step
            if all(isinstance(v, int) for v in (value.start, value.stop, step)):
                return IntDistribution(values[0], values[-1], step=step)
            return FloatDistribution(float(values[0]), float(values[0] + step * (len(values) - 1)), step=float(step))
        if isinstance(value, Glob):
            raise ConfigError(name, text, FORMS)
        if override.is_choice_sweep():
            if value.shuffle or getattr(value, "tags", None):
                raise ConfigError(name, text, f"{FORMS}; a choice takes no tags or shuffle")
            return CategoricalDistribution([storable(v) for v in override.sweep_iterator()])
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # Optuna's own check: low above high, log of a value <= 0, ...
        raise ConfigError(name, text, f"{FORMS} that Optuna accepts ({exc})") from None
    raise ConfigError(name, text, FORMS)


def storable(value: Any) -> Any:
    """A choice as Optuna stores it: numbers, strings, booleans and None as they are; lists and dicts as their
    override text (Hydra parses it back into the list or dict)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return hydra_text(value)


def hydra_text(value: Any) -> str:
    """``value`` written so that a Hydra override reads it back the same: floats to every digit."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if _reads_back(value) else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _reads_back(text: str) -> bool:
    """Whether ``text`` unquoted is read by Hydra as this very string."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if not text or text.strip() != text:
        return False
    try:
        return OverridesParser.create().parse_override(f"k={text}").value() == text
    except HydraException:
        return False


def describe(dist: Any) -> str:
    """A distribution in the syntax of ``params``: what an error shows as stored."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return "choice(" + ", ".join(hydra_text(c) for c in dist.choices) + ")"
    if dist.step is not None and not (isinstance(dist, IntDistribution) and dist.step == 1):
        stop = dist.high + dist.step
        return f"range({hydra_text(dist.low)}, {hydra_text(stop)}, {hydra_text(dist.step)})"
    tags = [t for t, on in (("int", isinstance(dist, IntDistribution)), ("log", dist.log)) if on]
    interval = f"interval({hydra_text(dist.low)}, {hydra_text(dist.high)})"
    return f"tag({', '.join(tags)}, {interval})" if tags else interval


def validate_trials(config: DictConfig, space: Space) -> None:
    """Compose and check a trial at each end of every range and with every choice, before anything starts."""
    from hydra import compose
    from optuna.distributions import CategoricalDistribution

    from resnet_lab.config.validation import validate_train_config

    ends = {key: (list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high])
            for key, d in space.distributions.items()}
    first = {key: values[0] for key, values in ends.items()}
    last = {key: values[-1] for key, values in ends.items()}
    points = [first, last] + [{**first, key: v} for key, values in ends.items() for v in values[1:-1]]
    for point in points:
        validate_train_config(compose(config.hydra.job.config_name, overrides=space.overrides(point)))
