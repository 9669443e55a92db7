"""Where a search's study is stored, the pruner that judges its trials, and which trial a job reports to: the
rules the Optuna sweeper and each of its jobs both follow, so that both sides always open the same study.
Nothing here imports Keras: the sweeper's process needs it without training anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Set, Tuple

from resnet_lab import tracking
from resnet_lab.errors import ConfigError

STORAGE_ENV = "RESNET_LAB_OPTUNA_STORAGE"  # a database URL (postgresql://...) kept out of configs and logs
JOURNAL_FILE = "optuna.journal"  # the default storage: a journal file beside a local (SQLite) tracking store
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband")
ATTR_PRUNED_EPOCH = "resnet_lab.pruned_epoch"  # on a trial its job pruned: the epoch it stopped after
STORAGE_FORMS = ("null (a journal file beside a local tracking store, or $" + STORAGE_ENV + "), a journal file "
                 "path (e.g. searches/optuna.journal), or a database URL (sqlite:///optuna.db, "
                 "postgresql://user@host/db)")


@dataclass(frozen=True)
class PrunerSpec:
    """``hydra.sweeper.pruner`` and the settings it reads: epochs are the steps a trial reports."""

    name: str = "median"
    warmup_epochs: int = 2  # no trial is pruned before this epoch (successive halving, hyperband: min_resource)
    startup_trials: int = 4  # median, percentile: trials that finish before any is pruned
    percentile: float = 25.0  # percentile: pruned below this percentile of the finished trials' values

    def check(self) -> None:
        if self.name not in PRUNERS:
            raise ConfigError("hydra.sweeper.pruner", self.name, "one of " + ", ".join(PRUNERS))
        if self.warmup_epochs < 1:
            raise ConfigError("hydra.sweeper.warmup_epochs", self.warmup_epochs, "1 or more epochs")
        if self.startup_trials < 0:
            raise ConfigError("hydra.sweeper.startup_trials", self.startup_trials, "0 or more trials")
        if not 0 < self.percentile < 100:
            raise ConfigError("hydra.sweeper.percentile", self.percentile, "a percentile between 0 and 100")

    def build(self, epochs: int) -> Any:
        """The Optuna pruner; ``epochs`` (``trainer.epochs``) is the most a trial can report."""
        import optuna

        pruners = optuna.pruners
        if self.name == "none":
            return pruners.NopPruner()
        if self.name in ("median", "percentile"):
            return pruners.PercentilePruner(50.0 if self.name == "median" else self.percentile,
                                            n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs)
        if self.name == "successive_halving":
            return pruners.SuccessiveHalvingPruner(min_resource=self.warmup_epochs)
        return pruners.HyperbandPruner(min_resource=self.warmup_epochs, max_resource=max(epochs, self.warmup_epochs))

    @classmethod
    def of(cls, sweeper: Mapping[str, Any]) -> "PrunerSpec":
        return cls(str(sweeper["pruner"]), int(sweeper["warmup_epochs"]), int(sweeper["startup_trials"]),
                   float(sweeper["percentile"]))


def storage_url(setting: Optional[str], tracking_uri: Optional[str],
                environ: Mapping[str, str] = os.environ) -> str:
    """``hydra.sweeper.storage``; else ``$RESNET_LAB_OPTUNA_STORAGE``; else a journal file beside a local
    tracking store. Relative paths are taken from the launch directory, as the tracking store's are."""
    if setting:
        if "://" not in setting:
            path = Path(setting).expanduser()
            return str(path if path.is_absolute() else (tracking.launch_dir() / path).resolve())
        if setting.startswith("sqlite:///") and not Path(setting[len("sqlite:///"):]).is_absolute():
            return f"sqlite:///{(tracking.launch_dir() / setting[len('sqlite:///'):]).resolve()}"
        return setting
    if environ.get(STORAGE_ENV):
        return environ[STORAGE_ENV]
    uri = tracking.resolve_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///"):]).parent / JOURNAL_FILE)
    raise ConfigError("hydra.sweeper.storage", None, f"a storage the sweeper and every job can open, with "
                      f"tracking.uri={tracking.redact_uri(uri)}: a database URL in ${STORAGE_ENV} (postgresql://...)"
                      f", or hydra.sweeper.storage set to a journal file on a shared file system or a database URL")


def open_storage(url: str) -> Any:
    """The Optuna storage at ``url``: a journal file, or a database. One line naming it when it cannot open."""
    import optuna

    try:
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(url)
            return optuna.storages.JournalStorage(backend)
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # a driver missing, a refused connection, a folder that cannot be written
        reason = tracking.redact_uri(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConfigError("hydra.sweeper.storage", tracking.redact_uri(url),
                          f"{STORAGE_FORMS}; opening it failed: {reason[:300]}") from None


@dataclass(frozen=True)
class TrialLink:
    """Which trial of which study a job reports to, and the pruner that judges it."""

    storage: str
    study: str
    number: int
    pruner: PrunerSpec

    def open(self, epochs: int) -> Tuple[Any, Set[int]]:
        """The study's trial as an ``optuna.trial.Trial``, found by its number, and the epochs it has reported
        (a retried trial starts with those of the interrupted one)."""
        import optuna

        storage = open_storage(self.storage)
        study = optuna.load_study(study_name=self.study, storage=storage, pruner=self.pruner.build(epochs),
                                  sampler=optuna.samplers.RandomSampler())  # a job samples nothing
        study_id = storage.get_study_id_from_name(self.study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        return optuna.trial.Trial(study, trial_id), set(storage.get_trial(trial_id).intermediate_values)


def trial_link(cfg: Any) -> Optional[TrialLink]:
    """The trial this job reports to, when the Optuna sweeper launched it; None otherwise."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if sweeper.get("trial") is None:
        return None
    return TrialLink(storage_url(sweeper.storage, cfg.tracking.uri), str(sweeper.study_name), int(sweeper.trial),
                     PrunerSpec.of(sweeper))
