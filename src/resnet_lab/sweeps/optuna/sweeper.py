"""The search (``hparams_search=optuna``): ask the study for a batch of ``n_jobs`` trials, launch them through
the configured launcher, tell the study how each ended, until it holds ``n_trials``; then the summary.

Everything is stored: the same command again finds its study (by name) and its MLflow parent run (by the study
and its storage), runs only the trials still missing, and asks again the trials an interruption cut off (their
runs continue from their checkpoints). Each job reports its epochs to its trial and may be pruned
(``training/pruning.py``); the sweeper reads the outcome from the study and tells it.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import DictConfig

from resnet_lab import tracking
from resnet_lab.errors import ConfigError, UserError
from resnet_lab.sweeps.jobs import (JOB_FAILED_FILE, failure_line, has_failed, output_dir_of, skipped_run_id,
                                    sweep_dir_of)
from resnet_lab.sweeps.optuna import summary
from resnet_lab.sweeps.optuna.space import hydra_text, parse_space, validate_trials
from resnet_lab.sweeps.parent import MLFLOW_NOTE, ParentRun, sweep_tags
from resnet_lab.sweeps.optuna.study import (ATTR_INTERRUPTED, ATTR_RETRY_OF, Options, check_options, open_study,
                                            study_name_of)
from resnet_lab.training.trial_link import ATTR_PRUNED_EPOCH, open_storage, storage_url

TAG_SWEEPER = "resnet_lab.sweeper"
TAG_SWEEP_HASH = "resnet_lab.sweep_hash"  # the study and its storage: the same command finds the same parent
ATTR_RUN = "resnet_lab.run_id"  # on a told trial: the MLflow run it stands for


class Search:
    def __init__(self, config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
        check_options(options, config)
        self.config, self.launcher, self.options = config, launcher, options
        self.space = parse_space(dict(config.hydra.sweeper.get("params") or {}), arguments)
        if not self.space.distributions:
            raise ConfigError("hydra.sweeper.params", dict(config.hydra.sweeper.get("params") or {}), "at least one "
                              "key to search, e.g. optimizer.learning_rate: tag(log, interval(1e-4, 1e-1))")
        self.metric = config.trainer.monitor
        self.url = storage_url(options.storage, config.tracking.uri)
        self.storage = open_storage(self.url)
        validate_trials(config, self.space)
        self.name = study_name_of(options, self.space, config.tracking.experiment)
        self.study = open_study(self.storage, self.url, self.name, options, self.space)
        self.uri = tracking.resolve_uri(config.tracking.uri, Path.cwd())
        self.client = tracking.client_for(self.uri)
        self.sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        self.key = hashlib.sha256(f"{tracking.redact_uri(self.url)}\n{self.name}".encode()).hexdigest()[:16]
        self.parent: Optional[ParentRun] = None
        self.failed_jobs: List[str] = []
        self.launched = 0

    # -- the parent run ------------------------------------------------------------------------------------

    def open_parent(self) -> ParentRun:
        """The parent of this study (found by its hash), reopened; else a new one."""
        keys = [k.lstrip("+~") for k in self.space.distributions]
        tags = {**sweep_tags(self.config, keys), TAG_SWEEPER: "optuna", TAG_SWEEP_HASH: self.key,
                tracking.TAG_STUDY: self.name, "optuna.storage": tracking.redact_uri(self.url)}
        parent = ParentRun.open(self.uri, self.config.tracking.experiment, self.sweep_dir, tags,
                                note=f"Optuna search over {', '.join(self.space.distributions)}; jobs in "
                                     f"{self.sweep_dir}",
                                key_tag=TAG_SWEEP_HASH, kind="search")
        if parent.reopened:
            print(f"optuna: continuing study {self.name!r} ({len(self.study.trials)} trials so far) and parent run "
                  f"{parent.run_id} ({parent.run.info.run_name})", flush=True)
        else:
            print(f"optuna: study {self.name!r} in {tracking.redact_uri(self.url)}; parent run {parent.run_id} "
                  f"({parent.run.info.run_name})", flush=True)
        return parent

    # -- the trials ----------------------------------------------------------------------------------------

    def trials(self) -> List[Any]:
        return self.study.get_trials(deepcopy=False)

    def done(self) -> int:
        """Trials that count towards ``n_trials``: finished, pruned, or failed by themselves (not interrupted)."""
        tally = summary.counts(self.trials(), ATTR_INTERRUPTED)
        return tally["finished"] + tally["pruned"] + tally["failed"]

    def runs_of_study(self) -> Dict[int, Any]:
        """The FINISHED training run of each trial number, by the tags its job set."""
        runs = tracking.search_runs(self.uri, self.config.tracking.experiment,
                                    f"tags.`{tracking.TAG_STUDY}` = '{self.name}' and "
                                    f"tags.`{tracking.TAG_ROLE}` = 'train' and attributes.status = 'FINISHED'",
                                    max_results=5000)
        found = {int(r.data.tags[tracking.TAG_TRIAL]): r for r in runs if tracking.TAG_TRIAL in r.data.tags}
        for t in self.trials():  # a job skipped to an identical FINISHED run stands for it
            if ATTR_RUN in t.user_attrs and t.number not in found:
                found[t.number] = self.client.get_run(t.user_attrs[ATTR_RUN])
        return found

    def settle_interrupted(self) -> List[int]:
        """Trials left RUNNING by a stop: told as their run ended, if it did; else failed and asked again."""
        import optuna
        from optuna.trial import TrialState

        runs, again = self.runs_of_study(), []
        for frozen in [t for t in self.trials() if t.state == TrialState.RUNNING]:
            run = runs.get(frozen.number)
            if run is not None and self.metric in run.data.metrics:
                state = TrialState.PRUNED if tracking.TAG_PRUNED_EPOCH in run.data.tags else TrialState.COMPLETE
                self.study.tell(frozen.number, None if state == TrialState.PRUNED else run.data.metrics[self.metric],
                                state=state, skip_if_finished=True)
                continue
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(
                self.storage.get_study_id_from_name(self.name), frozen.number)
            optuna.trial.Trial(self.study, trial_id).set_user_attr(ATTR_INTERRUPTED, True)
            self.study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
            self.study.enqueue_trial(dict(frozen.params), user_attrs={ATTR_RETRY_OF: frozen.number})
            again.append(frozen.number)
        return again

    def job_of(self, trial: Any) -> List[str]:
        """A trial's overrides: its values, its run's name, its number and study (read by the job's reporter)."""
        overrides = self.space.overrides(trial.params)
        before = trial.user_attrs.get(ATTR_RETRY_OF)
        if before is not None:  # its run continues from its checkpoint, reporting on from where it stopped
            old = next(t for t in self.trials() if t.number == before)
            for step, value in sorted(old.intermediate_values.items()):
                trial.report(value, step)
            overrides.append("trainer.resume=true")
        name = summary.trial_run_name(self.config.model.name, trial.number, trial.params)
        return [*overrides, f"tracking.run_name={hydra_text(name)}", f"hydra.sweeper.trial={trial.number}",
                f"hydra.sweeper.study_name={hydra_text(self.name)}"]

    def launch(self, trials: List[Any]) -> None:
        """Launch one batch (job folder = trial number) and tell the study how each trial ended."""
        jobs = [self.job_of(t) for t in trials]
        returns: List[Any] = []
        start = 0
        while start < len(trials):  # one launch per run of consecutive numbers (there is one, alone)
            end = start + 1
            while end < len(trials) and trials[end].number == trials[end - 1].number + 1:
                end += 1
            returns += list(self.launcher.launch(jobs[start:end], initial_job_idx=trials[start].number))
            start = end
        self.launched += len(trials)
        for trial, ret in zip(trials, returns):
            self.tell(trial, ret)

    def tell(self, trial: Any, ret: Any) -> None:
        from optuna.trial import TrialState

        folder = output_dir_of(ret)
        failed = has_failed(folder)
        try:
            value = ret.return_value  # raises when the job raised
        except Exception:
            failed, value = True, None
        stood_for = skipped_run_id(folder)
        if stood_for:
            trial.set_user_attr(ATTR_RUN, stood_for)
        frozen = next(t for t in self.trials() if t.number == trial.number)
        pruned = frozen.user_attrs.get(ATTR_PRUNED_EPOCH)
        if failed or value is None or not math.isfinite(float(value)):
            self.study.tell(trial, state=TrialState.FAIL)
            self.failed_jobs.append(folder.name if folder is not None else str(trial.number))
            line = f"failed (the reason in {folder / JOB_FAILED_FILE})" if folder is not None else "failed"
        elif pruned is not None:
            self.study.tell(trial, state=TrialState.PRUNED)
            line = f"pruned after epoch {pruned}"
        else:
            self.study.tell(trial, float(value))
            line = f"finished: {self.metric} {float(value):.4f}"
        print(f"optuna: trial {trial.number} {line} ({summary.params_line(trial.params)})", flush=True)

    # -- the search -----------------------------------------------------------------------------------------

    def run(self) -> None:
        self.parent = self.open_parent()
        started = time.monotonic()
        again = self.settle_interrupted()  # a stop that left no chance to say so (a killed process)
        if again:
            print(f"optuna: trial(s) {', '.join(map(str, again))} were cut off before; asking them again", flush=True)
        try:  # a stop anywhere from asking to telling leaves trials RUNNING: settle them before going
            while True:
                missing = self.options.n_trials - self.done()
                if missing <= 0:
                    break
                batch = [self.study.ask(dict(self.space.distributions))
                         for _ in range(min(self.options.n_jobs, missing))]
                self.launch(batch)
        except BaseException:
            again = self.settle_interrupted()
            print(f"interrupted: trial(s) {', '.join(map(str, again)) or 'none'} of study {self.name!r} are marked "
                  f"failed and will be asked again; rerun the same command to go on (runs continue from their "
                  f"checkpoints)", file=sys.stderr, flush=True)
            raise
        self.finish(time.monotonic() - started)

    def finish(self, wall: float) -> None:
        """The summary: to the parent (description, tags, trials table, plots, champion) and to the terminal."""
        assert self.parent is not None
        parent, trials, runs = self.parent, self.trials(), self.runs_of_study()
        tally = summary.counts(trials, ATTR_INTERRUPTED)
        best = self.study.best_trial if tally["finished"] else None
        best_run = runs.get(best.number) if best is not None else None
        table = summary.trials_table(trials, self.metric, self.options.direction, runs, ATTR_PRUNED_EPOCH,
                                     ATTR_INTERRUPTED)
        parent.client.log_text(parent.run_id, table + "\n", "trials.md")
        plots = summary.log_plots(self.study, parent.client, parent.run_id)
        if best is not None:
            tracking.Run(parent.client, parent.run_id).log_metrics({f"best_{self.metric}": best.value}, step=0)
        summary.write_results(self.sweep_dir, self.name, tracking.redact_uri(self.url), best, self.options.direction)
        tags = {MLFLOW_NOTE: summary.description(best, self.metric, best_run, tally, table, self.name),
                "trials_finished": tally["finished"], "trials_pruned": tally["pruned"],
                "trials_failed": tally["failed"], "jobs_failed": len(self.failed_jobs),
                **({"best_trial": best.number} if best is not None else {})}
        headline = (f"search {parent.run.info.run_name}: study {self.name!r}, {summary.tally_line(tally)} "
                    f"(n_trials={self.options.n_trials}); {self.launched} launched in this session, "
                    f"wall time {wall / 60:.1f} min")
        finished = [r for r in runs.values() if tracking.TAG_PRUNED_EPOCH not in r.data.tags]
        parent.finish(self.config, finished, headline,
                      [*summary.best_lines(best, self.metric, self.options.direction, best_run), "", table],
                      f"trials.md, {', '.join(plots) or 'no plots yet'}", tags, self.failed_jobs,
                      failure_line(self.failed_jobs, self.launched, self.sweep_dir, parent.run_id),
                      champion_from=[best_run] if best_run else [])


def run_search(config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
    """The sweeper's body: a user's mistake is one line and exit code 2, before any job or run exists."""
    try:
        search = Search(config, launcher, options, arguments)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        search.run()
    except KeyboardInterrupt:
        sys.exit(130)
