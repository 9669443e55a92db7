"""Pruning across the process boundary: a search's trial reports its monitored metric to its Optuna study after
every epoch, and stops when the study's pruner says so.

The Optuna sweeper (``hparams_search=optuna``) gives each of its jobs the study's name and the trial's number
(``hydra.sweeper.study_name``, ``hydra.sweeper.trial``). The job opens the same storage, loads the study with
the same pruner and reports to that trial, with Optuna's public API, through the storage: whatever launched
it (this process, joblib's workers, a Slurm node). Where the storage is and which pruner it is follow from the
sweeper's settings by the rules of ``trial_link``, which the sweeper follows too.

A pruned run stops after the epoch its pruner judged, checkpointed like any other, and ends FINISHED with the
tag ``resnet_lab.pruned_epoch``; the sweeper tells the study it was pruned.
"""

from __future__ import annotations

import logging
import math
from typing import Any, List, Optional, Set

import keras

from resnet_lab import tracking
from resnet_lab.training.trial_link import ATTR_PRUNED_EPOCH, TrialLink, trial_link

log = logging.getLogger(__name__)


class TrialReporter(keras.callbacks.Callback):
    """After each epoch (after it is checkpointed and logged): report the monitored metric to the trial, and stop
    training when the pruner prunes it; the run is tagged with the epoch."""

    def __init__(self, link: TrialLink, monitor: str, epochs: int, run: Optional[tracking.Run]) -> None:
        super().__init__()
        self.link, self.monitor, self.epochs, self.run = link, monitor, epochs, run
        self.trial: Any = None
        self.reported: Set[int] = set()
        self.pruned_epoch: Optional[int] = None

    def on_train_begin(self, logs=None):
        if self.run is not None:
            self.run.set_tags({tracking.TAG_STUDY: self.link.study, tracking.TAG_TRIAL: self.link.number})
        try:
            self.trial, self.reported = self.link.open(self.epochs)
        except Exception as exc:
            self._give_up(exc)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if self.trial is None or value is None or not math.isfinite(float(value)):
            return
        import optuna

        step = epoch + 1
        try:
            if step not in self.reported:
                self.trial.report(float(value), step)
                self.reported.add(step)
            if not self.trial.should_prune():
                return
            self.trial.set_user_attr(ATTR_PRUNED_EPOCH, step)
        except (optuna.exceptions.OptunaError, OSError) as exc:
            self._give_up(exc)
            return
        self.pruned_epoch = step
        if self.run is not None:
            self.run.set_tags({tracking.TAG_PRUNED_EPOCH: step})
        log.info("pruned after epoch %d: %s %.4f is below what trial %d of study %r needed to go on",
                 step, self.monitor, float(value), self.link.number, self.link.study)
        self.model.stop_training = True

    def _give_up(self, exc: BaseException) -> None:
        log.warning("trial %d of study %r cannot be reported to (%s): the run trains its epochs and is not pruned",
                    self.link.number, self.link.study, tracking.redact_uri(str(exc).splitlines()[0] if str(exc)
                                                                             else type(exc).__name__))
        self.trial = None


def trial_reporters(cfg: Any, run: Optional[tracking.Run]) -> List[keras.callbacks.Callback]:
    """The callback that reports each epoch to the job's trial, when a search launched the job; none otherwise."""
    link = trial_link(cfg)
    return [TrialReporter(link, cfg.trainer.monitor, cfg.trainer.epochs, run)] if link is not None else []
