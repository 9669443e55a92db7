"""``hydra/sweeper=optuna_search`` (what ``hparams_search=optuna`` selects): an Optuna (>= 5) study, stored and
resumable, asked in batches of ``n_jobs`` trials and launched through whatever launcher is configured; each
trial's job reports its epochs to the study and can be pruned (``resnet_lab.sweeps.optuna``).

Hydra imports this module when it scans ``hydra_plugins``: it stays light (the work is imported in ``sweep``).
"""

# No "from __future__ import annotations": Hydra loads plugins without registering the module, and dataclasses
# then cannot resolve string annotations.

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSearchSweeperConf:
    _target_: str = "hydra_plugins.resnet_lab_sweeper.optuna_search.OptunaSearchSweeper"
    _recursive_: bool = False  # the sampler is built by the sweeper (seeded past the trials of a resumed study)
    # The search space, key -> interval(a, b) | tag(log, interval(a, b)) | tag(int, interval(a, b)) |
    # choice(a, b, ...) | range(start, stop, step) | a fixed value (docs/search.md). Sweeps on the command line too.
    params: Optional[Dict[str, Any]] = None
    direction: str = "maximize"  # maximize | minimize what training returns (trainer.monitor)
    n_trials: int = 20  # the study's total: a rerun runs only the trials still missing; a larger one adds more
    n_jobs: int = 1  # trials asked, and launched, at a time (set the launcher's parallelism to match)
    sampler: Optional[Dict[str, Any]] = None  # {_target_: optuna.samplers.<Name>, ...}; null: TPE
    study_name: Optional[str] = None  # null: derived from the search (space, direction, fixed overrides)
    # null: $RESNET_LAB_OPTUNA_STORAGE, else a journal file optuna.journal beside a local tracking store;
    # or a journal file path, or a database URL (sqlite:///..., postgresql://user@host/db)
    storage: Optional[str] = None
    pruner: str = "median"  # none | median | percentile | successive_halving | hyperband
    warmup_epochs: int = 2  # no trial is pruned before this epoch (successive halving, hyperband: min_resource)
    startup_trials: int = 4  # median, percentile: trials that finish before any is pruned
    percentile: float = 25.0  # percentile: pruned when below this percentile of the others at the same epoch
    # Trials to try first, each key -> value, e.g. [{optimizer.learning_rate: 0.01}] (once a study: a rerun skips them)
    enqueue: List[Dict[str, Any]] = field(default_factory=list)
    trial: Optional[int] = None  # set by the sweeper on each job: the trial it reports to (never by hand)
    owns_parent_run: bool = True  # the sweep callback leaves the parent run to this sweeper


ConfigStore.instance().store(group="hydra/sweeper", name="optuna_search", node=OptunaSearchSweeperConf,
                             provider="resnet_lab")


class OptunaSearchSweeper(Sweeper):
    def __init__(self, params: Optional[Dict[str, Any]] = None, direction: str = "maximize", n_trials: int = 20,
                 n_jobs: int = 1, sampler: Optional[Dict[str, Any]] = None, study_name: Optional[str] = None,
                 storage: Optional[str] = None, pruner: str = "median", warmup_epochs: int = 2,
                 startup_trials: int = 4, percentile: float = 25.0, enqueue: Optional[List[Dict[str, Any]]] = None,
                 trial: Optional[int] = None, owns_parent_run: bool = True) -> None:
        super().__init__()
        self.settings = dict(direction=direction, n_trials=n_trials, n_jobs=n_jobs, sampler=sampler,
                             study_name=study_name, storage=storage, enqueue=enqueue or [])
        self.pruning = dict(name=pruner, warmup_epochs=warmup_epochs, startup_trials=startup_trials,
                            percentile=percentile)
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from resnet_lab.sweeps.jobs import configured_launcher

        self.config = config
        self.launcher = configured_launcher(hydra_context, task_function, config)

    def sweep(self, arguments: List[str]) -> Any:
        from omegaconf import OmegaConf

        from resnet_lab.sweeps.jobs import save_multirun_config
        from resnet_lab.sweeps.optuna.study import Options
        from resnet_lab.sweeps.optuna.sweeper import run_search
        from resnet_lab.training.trial_link import PrunerSpec

        assert self.config is not None and self.launcher is not None
        save_multirun_config(self.config)
        plain = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                 for k, v in self.settings.items()}
        options = Options(**plain, pruner=PrunerSpec(**self.pruning))
        return run_search(self.config, self.launcher, options, arguments)
