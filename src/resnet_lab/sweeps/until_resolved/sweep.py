"""The loop: a round of seeds, its record, and the next, until every pair is resolved or a budget is spent."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from omegaconf import DictConfig

from resnet_lab import tracking
from resnet_lab.compare.sequential import TIME_BUDGET, Design, Sequential, next_round, stop_reason
from resnet_lab.compare.sequential_verdict import DESIGN_TAG, design_json
from resnet_lab.errors import UserError
from resnet_lab.sweeps.jobs import sweep_dir_of
from resnet_lab.sweeps.parent import ParentRun, sweep_tags
from resnet_lab.sweeps.until_resolved.grid import group_hashes, grid_of, sweep_hash
from resnet_lab.sweeps.until_resolved.options import Options, check_options
from resnet_lab.sweeps.until_resolved.output import TAG_STOP_REASON, finish
from resnet_lab.sweeps.until_resolved.record import RoundLog, progress_line
from resnet_lab.sweeps.until_resolved.rounds import Seeds

TAG_SWEEPER = "resnet_lab.sweeper"  # "until_resolved" on its parent runs
TAG_SWEEP_HASH = "resnet_lab.sweep_hash"  # the groups and design: the same command finds the same parent
NO_SEEDS_LEFT = "jobs failed"  # every job of a round failed, or failures used up the seed budget


class UntilResolved:
    """One sweep: its grid and design, and what it launches."""

    def __init__(self, config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
        self.config, self.launcher, self.options = config, launcher, options
        self.grid = grid_of(dict(config.hydra.sweeper.get("params") or {}), arguments, options)
        self.design = Design(len(self.grid.seeds), options.seeds_per_round or len(self.grid.seeds),
                             options.max_seeds, options.level, options.spending)
        self.hashes = group_hashes(config.hydra.job.config_name, self.grid)
        self.key = sweep_hash(self.hashes, self.design, options, self.grid.seeds)
        self.sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        self.seeds = Seeds(self.grid, options.max_seeds)

    def open_parent(self) -> Tuple[ParentRun, RoundLog]:
        """The parent of the same sweep (by hash), reopened; else a new one."""
        keys = self.grid.swept_keys()
        tags = {**sweep_tags(self.config, keys), TAG_SWEEPER: "until_resolved", TAG_SWEEP_HASH: self.key,
                DESIGN_TAG: design_json(self.design, self.options.min_effect, self.options.metric, self.grid.seeds)}
        parent = ParentRun.open(tracking.resolve_uri(self.config.tracking.uri, Path.cwd()),
                                self.config.tracking.experiment, self.sweep_dir, tags,
                                note=f"seeds until resolved over {', '.join(keys)}; jobs in {self.sweep_dir}",
                                key_tag=TAG_SWEEP_HASH)
        rounds = RoundLog(parent, self.seeds.names)
        if parent.reopened:
            if TAG_STOP_REASON in parent.run.data.tags:  # it stops again, for this run's reason
                parent.client.delete_tag(parent.run_id, TAG_STOP_REASON)
            self.seeds.adopted = rounds.adopted()
            print(f"until_resolved: continuing parent run {parent.run_id} ({parent.run.info.run_name}, "
                  f"{len(rounds.rounds)} rounds so far)", flush=True)
        else:
            print(f"until_resolved: parent run {parent.run_id} ({parent.run.info.run_name})", flush=True)
        return parent, rounds

    def run(self) -> None:
        parent, log = self.open_parent()
        sequential = Sequential(self.design, self.options.min_effect)
        start = time.monotonic()
        number = len(log.rounds)
        launched: Optional[Tuple[int, float]] = None
        all_failed = False
        while True:
            values, seeds, runs = self.seeds.results(parent, self.hashes, self.options.metric)
            decision = sequential.decide(values)
            counts = {g: len(s) for g, s in seeds.items()}
            reason = stop_reason(decision, counts, self.design) if all(counts.values()) else None
            targets = next_round(decision, counts, self.design) if reason is None else {}
            jobs = self.seeds.jobs_for(targets, seeds) if targets else []
            if reason is None and (not jobs or all_failed):
                reason = NO_SEEDS_LEFT
            elapsed = time.monotonic() - start
            pace = launched[1] / launched[0] if launched else None
            if reason is None and (elapsed >= self.options.max_minutes * 60 or (
                    pace is not None and elapsed + pace * len(jobs) > self.options.max_minutes * 60)):
                reason = TIME_BUDGET
            if launched is None and log.rounds:
                print(f"until_resolved: {sum(counts.values())} runs finished so far, {decision.resolved} of "
                      f"{len(decision.pairs)} pairs resolved", flush=True)
            if launched is not None or (log.rounds and reason is not None):
                number += launched is not None
                entry = log.record(number, *(launched or (0, 0.0)), decision, values, self.design,
                                   self.options.min_effect, self.seeds.adopted, reason)
                if launched is not None:
                    print(progress_line(entry, elapsed), flush=True)
            if reason is not None:
                finish(self.config, parent, runs, values, self.seeds.names, self.design, self.options, log.rounds,
                       reason, time.monotonic() - start, self.seeds.failed_jobs, self.seeds.launched,
                       self.sweep_dir, ahead=log.ahead)
                return
            plan = ", ".join(f"{self.seeds.names.get(g, g)} to {n}" for g, n in targets.items())
            print(f"until_resolved: round {number + 1}: {len(jobs)} jobs ({plan} seeds)", flush=True)
            tic = time.monotonic()
            failed = self.seeds.launch(self.launcher, jobs)
            launched = (len(jobs), time.monotonic() - tic)
            all_failed = failed == len(jobs)  # every job failed: more seeds would too


def run_sweep(config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
    """The sweeper's body: a user's mistake is one line and exit code 2, before any run exists."""
    try:
        check_options(options, config)
        sweep = UntilResolved(config, launcher, options, arguments)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sweep.run()
