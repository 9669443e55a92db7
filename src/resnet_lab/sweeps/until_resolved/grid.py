"""The sweep's groups (the product of the swept keys but ``seed``), its seeds in order, and the hashes by which
its runs and a rerun of the same command find each other."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from resnet_lab.compare.sequential import Design
from resnet_lab.compare.sequential_verdict import design_json, seed_rank
from resnet_lab.errors import ConfigError, UserError
from resnet_lab.sweeps.until_resolved.options import Options


@dataclass
class Grid:
    """The groups of the sweep (each a list of overrides, the seed left out) and round 1's seeds."""

    groups: "OrderedDict[str, List[str]]"
    seeds: List[int]  # round 1's seeds; later rounds go on from the largest

    def seed_order(self) -> Iterator[int]:
        """Round 1's seeds, then one more than the largest, and on: the order ``seed_rank`` sorts by."""
        return itertools.chain(self.seeds, itertools.count(max(self.seeds) + 1))

    def rank(self, seed: int) -> int:
        return seed_rank(self.seeds)(seed)

    def group_of(self, job: Sequence[str]) -> str:
        return next(g for g, o in self.groups.items() if list(job[:len(o)]) == o)

    def swept_keys(self) -> List[str]:
        """The keys whose value differs between the groups, and the seed."""
        values: Dict[str, set] = {}
        for overrides in self.groups.values():
            for override in overrides:
                key, _, value = override.partition("=")
                values.setdefault(key, set()).add(value)
        return [key for key, seen in values.items() if len(seen) > 1] + ["seed"]


def grid_of(params: Mapping[str, Any], arguments: Sequence[str], options: Options) -> Grid:
    """The groups and round 1's seeds, as the basic sweeper reads ``params`` and the command line (the command
    line wins)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments))
    final: "OrderedDict[str, List[str]]" = OrderedDict()
    seeds: Optional[List[int]] = None
    for override in parsed:
        key = override.get_key_element()
        if override.key_or_group.lstrip("+~") == "seed":
            values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                      else [override.get_value_element_as_str()])
            try:
                seeds = [int(v) for v in values]
            except ValueError:
                raise ConfigError("seed", ",".join(values), "integers") from None
            continue
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(key, override.input_line, "a list of values (a,b,c) with hydra/sweeper=until_resolved")
            final[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            final[key] = [f"{key}={override.get_value_element_as_str()}"]
    if seeds is None:
        seeds = list(range(1, (options.seeds_per_round or 3) + 1))
    if len(set(seeds)) < 2:
        raise ConfigError("seed", ",".join(map(str, seeds)), "two or more seeds for round 1 with "
                          "hydra/sweeper=until_resolved (e.g. seed=1,2,3), or none given: 1 to seeds_per_round")
    if len(seeds) > options.max_seeds:
        raise ConfigError("hydra.sweeper.max_seeds", options.max_seeds, f"at least round 1's {len(seeds)} seeds")
    swept = [key for key, values in final.items() if len(values) > 1]
    groups: "OrderedDict[str, List[str]]" = OrderedDict()
    for combo in itertools.product(*final.values()):
        name = " ".join(o for o in combo if o.split("=", 1)[0] in swept) or "all"
        groups[name] = list(combo)
    if len(groups) < 2:
        raise UserError("hydra/sweeper=until_resolved compares groups: sweep at least one key besides seed "
                        "(e.g. model=cifar_resnet20,cifar_resnet32)")
    return Grid(groups, list(dict.fromkeys(seeds)))


def group_hashes(config_name: str, grid: Grid) -> Dict[str, str]:
    """Each group's ``resnet_lab.group_hash``, as its training runs will tag it (the seed left out)."""
    from hydra import compose

    from resnet_lab.config.resolvers import register_resolvers
    from resnet_lab.tracking.identity import group_hash

    register_resolvers()
    return {name: group_hash(compose(config_name, overrides=[*overrides, f"seed={grid.seeds[0]}"]))
            for name, overrides in grid.groups.items()}


def sweep_hash(hashes: Mapping[str, str], design: Design, options: Options, seeds: Sequence[int]) -> str:
    """What makes a rerun the same sweep: its groups, the design, the margin, the metric and round 1's seeds.
    The time budget and the launcher are left out: a rerun may give it more time, or other machines."""
    text = json.dumps({"groups": sorted(hashes.values()), "design": design_json(design, options.min_effect,
                                                                              options.metric, seeds)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
