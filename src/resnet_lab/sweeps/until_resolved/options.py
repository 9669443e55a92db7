"""The sweeper's settings (``hydra.sweeper.*``), refused in one line before any run exists when they cannot work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import DictConfig

from resnet_lab.compare.sequential import SPENDINGS
from resnet_lab.errors import ConfigError


@dataclass(frozen=True)
class Options:
    seeds_per_round: Optional[int]
    max_seeds: int
    max_minutes: float
    level: float
    min_effect: float  # the equivalence margin, in the metric's units
    metric: str
    spending: str


def check_options(options: Options, config: DictConfig) -> None:
    if not config.tracking.enabled:
        raise ConfigError("tracking.enabled", False, "true with hydra/sweeper=until_resolved: each round reads the "
                          "seeds' results from MLflow")
    if options.seeds_per_round is not None and options.seeds_per_round < 1:
        raise ConfigError("hydra.sweeper.seeds_per_round", options.seeds_per_round, "1 or more (or null: as many as "
                          "round 1 has)")
    if options.max_seeds < 2:
        raise ConfigError("hydra.sweeper.max_seeds", options.max_seeds, "2 or more seeds a group")
    if not options.max_minutes > 0:
        raise ConfigError("hydra.sweeper.max_minutes", options.max_minutes, "a positive number of minutes")
    if not 0 < options.level < 1:
        raise ConfigError("hydra.sweeper.level", options.level, "a level between 0 and 1, e.g. 0.05")
    if not options.min_effect > 0:
        raise ConfigError("hydra.sweeper.min_effect", options.min_effect, "a positive margin in the metric's units "
                          "(0.01 is one point of accuracy)")
    if options.spending not in SPENDINGS:
        raise ConfigError("hydra.sweeper.spending", options.spending, "one of " + ", ".join(map(repr, SPENDINGS)))
