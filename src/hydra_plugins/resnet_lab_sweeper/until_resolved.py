"""``hydra/sweeper=until_resolved``: the grid of the basic sweeper, run in rounds of seeds until every pair of
groups has its verdict (``resnet_lab.sweeps.until_resolved``), through whatever launcher is configured.

Hydra imports this module when it scans ``hydra_plugins``: it stays light (the work is imported in ``sweep``).
"""

# No "from __future__ import annotations": Hydra loads plugins without registering the module, and dataclasses
# then cannot resolve string annotations.

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class UntilResolvedSweeperConf:
    _target_: str = "hydra_plugins.resnet_lab_sweeper.until_resolved.UntilResolvedSweeper"
    # The grid, as the basic sweeper's: key -> "a,b,c". The seed values are round 1's seeds (at least two;
    # none given: 1 to seeds_per_round); later rounds go on from the largest.
    params: Optional[Dict[str, str]] = None
    seeds_per_round: Optional[int] = None  # seeds a round adds to each group of an unresolved pair (null: round 1's count)
    max_seeds: int = 30  # seeds a group at most; the design spends the whole level by then
    max_minutes: float = 120.0  # wall time of this command; no round starts that would end after it (round 1 always runs)
    level: float = 0.05  # the chance of any false "different" (and of any false "practically equal") over all rounds
    min_effect: float = 0.01  # the equivalence margin in the metric's units (0.01: one point), as compare.min_effect
    margin: Optional[float] = None  # the old name of min_effect: still read, with a notice
    metric: str = "test_accuracy"  # compared per seed; higher or lower, the tests are two-sided
    spending: str = "obrien_fleming"  # alpha spending over the looks: obrien_fleming or pocock
    owns_parent_run: bool = True  # the sweep callback leaves the parent run to this sweeper


ConfigStore.instance().store(group="hydra/sweeper", name="until_resolved", node=UntilResolvedSweeperConf,
                             provider="resnet_lab")


class UntilResolvedSweeper(Sweeper):
    def __init__(self, params: Optional[Dict[str, str]] = None, seeds_per_round: Optional[int] = None,
                 max_seeds: int = 30, max_minutes: float = 120.0, level: float = 0.05, min_effect: float = 0.01,
                 metric: str = "test_accuracy", spending: str = "obrien_fleming", owns_parent_run: bool = True,
                 margin: Optional[float] = None) -> None:
        super().__init__()
        if margin is not None:
            import sys

            print(f"note: hydra.sweeper.margin is now hydra.sweeper.min_effect (as compare.min_effect); using "
                  f"min_effect={margin}", file=sys.stderr)
            min_effect = margin
        self.params = dict(params or {})
        self.settings = dict(seeds_per_round=seeds_per_round, max_seeds=max_seeds, max_minutes=max_minutes,
                             level=level, min_effect=min_effect, metric=metric, spending=spending)
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from resnet_lab.sweeps.jobs import configured_launcher

        self.config = config
        self.launcher = configured_launcher(hydra_context, task_function, config)

    def sweep(self, arguments: List[str]) -> Any:
        from resnet_lab.sweeps.jobs import save_multirun_config
        from resnet_lab.sweeps.until_resolved import Options, run_sweep

        assert self.config is not None and self.launcher is not None
        save_multirun_config(self.config)
        return run_sweep(self.config, self.launcher, Options(**self.settings), arguments)
