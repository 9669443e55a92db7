"""Seeds until resolved (``hydra/sweeper=until_resolved``): a sweep that adds seeds in rounds until every pair of
its groups has a verdict, within a seed budget and a time budget.

The Hydra plugin (``hydra_plugins/resnet_lab_sweeper``) hands its launcher here. Each round launches, through
that launcher, the seeds that bring every group of an unresolved pair to its next look; then the sequential
verdict (``compare/sequential.py``) is computed on every finished seed. One MLflow parent run holds every
round's runs and records each round; rerunning the same command finds that parent again by a hash of the
sweep (its groups and design) and trains only the seeds it lacks.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import logging
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig

from resnet_lab import tracking
from resnet_lab.compare.sequential import (SEED_BUDGET, SPENDINGS, TIME_BUDGET, UNRESOLVED, Decision, Design,
                                           Sequential, next_round, seeds_still_needed, stop_reason)
from resnet_lab.compare.sequential_verdict import DESIGN_TAG, design_json, sequential_verdict
from resnet_lab.errors import ConfigError, UserError
from resnet_lab.sweep import (COMPARE_METRICS, JOB_FAILED_FILE, JOB_SKIPPED_FILE, MLFLOW_NOTE, sweep_champion,
                              sweep_dir_of)

log = logging.getLogger(__name__)

TAG_SWEEPER = "resnet_lab.sweeper"  # "until_resolved" on its parent runs
TAG_SWEEP_HASH = "resnet_lab.sweep_hash"  # the groups and design: the same command finds the same parent
TAG_STOP_REASON = "resnet_lab.stop_reason"
TAG_ROUNDS = "resnet_lab.rounds"
TAG_VERDICT = "resnet_lab.verdict_so_far"
ROUNDS_FILE = "rounds.json"
NO_SEEDS_LEFT = "jobs failed"  # every job of a round failed, or failures used up the seed budget


@dataclass(frozen=True)
class Options:
    """The sweeper's settings (``conf``: hydra.sweeper.*)."""

    seeds_per_round: Optional[int]
    max_seeds: int
    max_minutes: float
    level: float
    margin: float
    metric: str
    spending: str


@dataclass
class Grid:
    """The groups of the sweep (each a list of overrides, the seed left out), the fixed overrides and the seeds."""

    groups: "OrderedDict[str, List[str]]"
    seeds: List[int]  # round 1's seeds; later rounds go on from the largest


@dataclass
class Round:
    number: int
    jobs: int
    seconds: float
    seeds: Dict[str, int]
    runs: int
    resolved: int
    pairs: int
    verdict: str
    needed_runs: int
    needed_minutes: Optional[float]
    stop: Optional[str] = None
    pair_verdicts: Dict[str, str] = field(default_factory=dict)


def check_options(options: Options, config: DictConfig) -> None:
    """Refuse a sweeper setting that cannot work, in one line, before any run exists."""
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
    if not options.margin > 0:
        raise ConfigError("hydra.sweeper.margin", options.margin, "a positive margin in the metric's units (0.01 is "
                          "one point of accuracy)")
    if options.spending not in SPENDINGS:
        raise ConfigError("hydra.sweeper.spending", options.spending, "one of " + ", ".join(map(repr, SPENDINGS)))


def grid_of(params: Mapping[str, Any], arguments: Sequence[str], options: Options) -> Grid:
    """The groups (the product of the swept keys but ``seed``) and round 1's seeds, as the basic sweeper reads
    ``params`` and the command line (the command line wins)."""
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


def seed_order(grid: Grid) -> "itertools.chain[int]":
    """Round 1's seeds, then one more than the largest, and on."""
    return itertools.chain(grid.seeds, itertools.count(max(grid.seeds) + 1))


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
    text = json.dumps({"groups": sorted(hashes.values()), "design": design_json(design, options.margin,
                                                                              options.metric, seeds)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class UntilResolved:
    """One sweep: its parent run, its rounds and their record."""

    def __init__(self, config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
        self.config, self.launcher, self.options = config, launcher, options
        params = dict(config.hydra.sweeper.get("params") or {})
        self.grid = grid_of(params, arguments, options)
        self.design = Design(len(self.grid.seeds), options.seeds_per_round or len(self.grid.seeds),
                             options.max_seeds, options.level, options.spending)
        self.hashes = group_hashes(config.hydra.job.config_name, self.grid)
        self.key = sweep_hash(self.hashes, self.design, options, self.grid.seeds)
        self.uri = tracking.resolve_uri(config.tracking.uri, Path.cwd())
        self.client = tracking.client_for(self.uri)
        self.sweep_dir = sweep_dir_of(config.hydra.sweep.dir)
        self.sequential = Sequential(self.design, options.margin)
        self.parent_id = ""
        self.rounds: List[Dict[str, Any]] = []
        self.failed: Dict[str, set] = {g: set() for g in self.grid.groups}
        self.failed_jobs: List[str] = []
        self.adopted: List[str] = []
        self.job_num = 0
        self.all_failed = False
        self.names: Dict[str, str] = {}

    # -- the parent run ----------------------------------------------------------------------------------

    def open_parent(self) -> None:
        """The unfinished or finished parent of the same sweep (by hash), reopened; else a new one."""
        tracking.quiet_mlflow()
        experiment = tracking.experiment_id(self.client, self.config.tracking.experiment, self.uri)
        found = self.client.search_runs([experiment], filter_string=f"tags.`{tracking.TAG_ROLE}` = 'sweep' and "
                                        f"tags.`{TAG_SWEEP_HASH}` = '{self.key}'",
                                        order_by=["attributes.start_time DESC"], max_results=1)
        tags = {tracking.TAG_ROLE: "sweep", tracking.TAG_SWEEP_DIR: self.sweep_dir, TAG_SWEEPER: "until_resolved",
                TAG_SWEEP_HASH: self.key, tracking.TAG_SWEPT_KEYS: ",".join(self._swept_keys()),
                DESIGN_TAG: design_json(self.design, self.options.margin, self.options.metric, self.grid.seeds),
                "overrides": " ".join(tracking.redact_overrides(self.config.hydra.overrides.task))}
        if found:
            parent = found[0]
            self.parent_id = parent.info.run_id
            self.client.update_run(self.parent_id, status="RUNNING")
            dirs = parent.data.tags.get("resnet_lab.sweep_dirs", parent.data.tags.get(tracking.TAG_SWEEP_DIR, ""))
            tags["resnet_lab.sweep_dirs"] = ",".join([d for d in dirs.split(",") if d] + [self.sweep_dir])
            for key, value in tags.items():  # jobs of this folder find the parent by its sweep_dir tag
                self.client.set_tag(self.parent_id, key, value)
            if TAG_STOP_REASON in parent.data.tags:  # it stops again, for this run's reason
                self.client.delete_tag(self.parent_id, TAG_STOP_REASON)
            self.rounds = self._logged_rounds()
            self.adopted = [a for r in self.rounds for a in r.get("adopted", [])]
            print(f"until_resolved: continuing parent run {self.parent_id} ({parent.info.run_name}, "
                  f"{len(self.rounds)} rounds so far)", flush=True)
        else:
            name = f"sweep-{Path(self.sweep_dir).parent.name}-{Path(self.sweep_dir).name}"
            tags[MLFLOW_NOTE] = f"seeds until resolved over {', '.join(self._swept_keys())}; jobs in {self.sweep_dir}"
            tags["resnet_lab.sweep_dirs"] = self.sweep_dir
            self.parent_id = self.client.create_run(experiment, run_name=name, tags=tags).info.run_id
            print(f"until_resolved: parent run {self.parent_id} ({name})", flush=True)
        atexit.register(self._close, "KILLED")  # Ctrl-C or a crash: the parent must not stay RUNNING

    def _swept_keys(self) -> List[str]:
        """The keys whose value differs between the groups, and the seed."""
        values: Dict[str, set] = {}
        for overrides in self.grid.groups.values():
            for override in overrides:
                key, _, value = override.partition("=")
                values.setdefault(key, set()).add(value)
        return [key for key, seen in values.items() if len(seen) > 1] + ["seed"]

    def _logged_rounds(self) -> List[Dict[str, Any]]:
        try:
            path = self.client.download_artifacts(self.parent_id, ROUNDS_FILE)
        except Exception:  # no round recorded yet
            return []
        return json.loads(Path(path).read_text())

    def _close(self, status: str) -> None:
        if self.parent_id and self.client.get_run(self.parent_id).info.status == "RUNNING":
            self.client.set_terminated(self.parent_id, status)

    # -- the rounds --------------------------------------------------------------------------------------

    def results(self) -> Tuple[Dict[str, List[float]], Dict[str, List[int]], List[Any]]:
        """Per group, the finished seeds' values and seeds in seed order; and the runs they come from."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        experiment = self.client.get_run(self.parent_id).info.experiment_id
        runs = list(self.client.search_runs(
            [experiment], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_id}' and "
            f"tags.`{tracking.TAG_ROLE}` = 'train' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time ASC"], max_results=5000))
        known = {r.info.run_id for r in runs}
        runs += [self.client.get_run(i) for i in dict.fromkeys(self.adopted) if i not in known]
        by_hash = {h: g for g, h in self.hashes.items()}
        found: Dict[str, Dict[int, float]] = {g: {} for g in self.grid.groups}
        used = []
        for run in runs:
            group = by_hash.get(run.data.tags.get(tracking.TAG_GROUP_HASH, ""))
            value = run.data.metrics.get(self.options.metric)
            seed = run.data.params.get("seed")
            if group is None or value is None or seed is None or not math.isfinite(value):
                continue
            if int(seed) not in found[group]:
                found[group][int(seed)] = float(value)
                used.append(run)
                self.names.setdefault(group, run.data.tags.get(tracking.TAG_GROUP, group))
        values, seeds = {}, {}
        for group, by_seed in found.items():
            order = sorted(by_seed, key=self._rank)
            values[group], seeds[group] = [by_seed[s] for s in order], order
        return values, seeds, used

    def _rank(self, seed: int) -> int:
        first = self.grid.seeds
        return first.index(seed) if seed in first else len(first) + seed

    def jobs_for(self, targets: Mapping[str, int], done: Mapping[str, List[int]]) -> List[List[str]]:
        """The overrides of the jobs that bring each group to its target seeds a group."""
        jobs = []
        for group, target in targets.items():
            have = set(done.get(group, []))
            missing = target - len(have)
            tried = len(have) + len(self.failed[group])  # a failed seed counts against the budget too
            for seed in seed_order(self.grid):
                if missing <= 0 or tried >= self.design.max_seeds:
                    break
                if seed in have or seed in self.failed[group]:
                    continue
                jobs.append([*self.grid.groups[group], f"seed={seed}", "tracking.skip_finished=true"])
                missing, tried = missing - 1, tried + 1
        return jobs

    def launch(self, jobs: List[List[str]]) -> None:
        returns = self.launcher.launch(jobs, initial_job_idx=self.job_num)
        for job, ret in zip(jobs, returns):
            folder = self._output_dir(ret)
            if folder is not None and (folder / JOB_SKIPPED_FILE).exists():
                self.adopted.append((folder / JOB_SKIPPED_FILE).read_text().strip())
            failed = folder is not None and (folder / JOB_FAILED_FILE).exists()
            try:
                _ = ret.return_value  # raises when the job raised
            except Exception:
                failed = True
            if failed:
                group = next(g for g, o in self.grid.groups.items() if job[:len(o)] == o)
                seed = int(next(x for x in job if x.startswith("seed=")).split("=", 1)[1])
                self.failed[group].add(seed)
                self.failed_jobs.append(folder.name if folder is not None else "?")
        self.job_num += len(jobs)

    def _output_dir(self, ret: Any) -> Optional[Path]:
        from omegaconf import OmegaConf

        output = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir", default=None) if ret.hydra_cfg else None
        return Path(output) if output else None

    # -- the record ----------------------------------------------------------------------------------------

    def record(self, number: int, jobs: int, seconds: float, decision: Decision, seeds: Mapping[str, List[int]],
               stop: Optional[str]) -> Dict[str, Any]:
        """Log the round to the parent (metrics with step = round, the rounds table, tags) and print its line."""
        counts = {g: len(s) for g, s in seeds.items()}
        more = seeds_still_needed(decision, counts, self._spreads(decision, seeds), self.design, self.options.margin)
        needed_runs = sum(more.values())
        pace = seconds / jobs if jobs else None  # this round's wall seconds per job, whatever the launcher
        needed_minutes = needed_runs * pace / 60 if pace else None
        entry = {"round": number, "jobs": jobs, "seconds": round(seconds, 1), "runs": sum(counts.values()),
                 "seeds": {self.names.get(g, g): n for g, n in counts.items()},
                 "resolved": decision.resolved, "pairs": len(decision.pairs),
                 "pair_verdicts": {f"{self.names.get(p.a, p.a)} vs {self.names.get(p.b, p.b)}": p.verdict
                                   for p in decision.pairs},
                 "verdict": self._short(decision), "needed_runs": needed_runs,
                 "needed_minutes": None if needed_minutes is None else round(needed_minutes, 1),
                 "stop": stop, "adopted": [a for a in self.adopted if a not in self._adopted_before()]}
        if number <= len(self.rounds):  # a rerun with nothing left to train: the last round's stop, once more
            self.rounds[number - 1] = {**self.rounds[number - 1], "stop": stop}
            self.client.log_text(self.parent_id, json.dumps(self.rounds, indent=1), ROUNDS_FILE)
            self.client.log_text(self.parent_id, rounds_table(self.rounds) + "\n", "rounds.md")
            return self.rounds[number - 1]
        self.rounds.append(entry)
        run = tracking.Run(self.client, self.parent_id)
        run.log_metrics({"round_runs": entry["runs"], "round_pairs_resolved": decision.resolved,
                         "round_seconds": seconds, "round_seeds_min": min(counts.values() or [0]),
                         "round_needed_runs": needed_runs}, step=number)
        run.set_tags({TAG_ROUNDS: len(self.rounds), TAG_VERDICT: entry["verdict"][:4000]})
        self.client.log_text(self.parent_id, json.dumps(self.rounds, indent=1), ROUNDS_FILE)
        self.client.log_text(self.parent_id, rounds_table(self.rounds) + "\n", "rounds.md")
        return entry

    def _adopted_before(self) -> set:
        return {a for r in self.rounds for a in r.get("adopted", [])}

    def _spreads(self, decision: Decision, seeds: Mapping[str, List[int]]) -> Dict[Tuple[str, str], float]:
        values, _, _ = self._last_values
        spreads = {}
        for p in decision.pairs:
            a, b = values.get(p.a, []), values.get(p.b, [])
            if len(a) >= 2 and len(b) >= 2:
                import numpy as np

                spreads[(p.a, p.b)] = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
        return spreads

    def _short(self, decision: Decision) -> str:
        parts = []
        for p in decision.pairs:
            a, b = self.names.get(p.a, p.a), self.names.get(p.b, p.b)
            if p.verdict == UNRESOLVED:
                parts.append(f"{a} ? {b}")
            elif p.verdict == "practically equal":
                parts.append(f"{a} ≈ {b}")
            else:
                high, low = (a, b) if p.diff > 0 else (b, a)
                parts.append(f"{high} > {low}")
        return f"{decision.resolved} of {len(decision.pairs)} pairs resolved: " + "; ".join(parts)

    # -- the sweep ---------------------------------------------------------------------------------------

    def run(self) -> None:
        self.open_parent()
        start = time.monotonic()
        number = len(self.rounds)
        launched: Optional[Tuple[int, float]] = None
        last_pace: Optional[float] = None
        while True:
            self._last_values = self.results()
            values, seeds, _ = self._last_values
            decision = self.sequential.decide(values)
            counts = {g: len(s) for g, s in seeds.items()}
            reason = stop_reason(decision, counts, self.design) if all(counts.values()) else None
            targets = next_round(decision, counts, self.design) if reason is None else {}
            jobs = self.jobs_for(targets, seeds) if targets else []
            if reason is None and (not jobs or self.all_failed):
                reason = NO_SEEDS_LEFT
            elapsed = time.monotonic() - start
            if reason is None and last_pace is not None and \
                    elapsed + last_pace * len(jobs) > self.options.max_minutes * 60:
                reason = TIME_BUDGET
            if reason is None and elapsed >= self.options.max_minutes * 60:
                reason = TIME_BUDGET
            if launched is None and self.rounds:
                print(f"until_resolved: {sum(counts.values())} runs finished so far, {decision.resolved} of "
                      f"{len(decision.pairs)} pairs resolved", flush=True)
            if launched is not None:
                number += 1
                entry = self.record(number, launched[0], launched[1], decision, seeds, reason)
                print(progress_line(entry, elapsed), flush=True)
            elif self.rounds and reason is not None:
                self.record(number, 0, 0.0, decision, seeds, reason)
            if reason is not None:
                self.finish(decision, values, reason, time.monotonic() - start)
                return
            failed_before = len(self.failed_jobs)
            tic = time.monotonic()
            print(f"until_resolved: round {number + 1}: {len(jobs)} jobs ({', '.join(f'{self.names.get(g, g)} to {n}' for g, n in targets.items())} seeds)", flush=True)
            self.launch(jobs)
            seconds = time.monotonic() - tic
            last_pace = seconds / len(jobs)
            launched = (len(jobs), seconds)
            if len(self.failed_jobs) - failed_before == len(jobs):  # every job failed: more seeds would too
                self.all_failed = True

    def finish(self, decision: Decision, values: Mapping[str, List[float]], reason: str, wall: float) -> None:
        """The parent's comparison (tables, plots), the sequential verdict in its place, the stop reason."""
        from resnet_lab.compare.comparison import log_to_run
        from resnet_lab.compare.render import pairwise_report, report, summary_table
        from resnet_lab.compare.rows import rows_for
        from resnet_lab.tracking.ui_view import pointer_lines

        _, _, runs = self._last_values
        log_to_run(self.client, self.parent_id, runs, COMPARE_METRICS, self.options.metric)
        rows = rows_for(runs, list(COMPARE_METRICS), "seed", "depth")
        seconds = {str(g["run"]): g.get("train_seconds") for g in rows}
        named = {self.names.get(g, g): v for g, v in values.items()}
        verdict = sequential_verdict(named, self.design, self.options.margin, self.options.metric, seconds)
        for fmt, suffix in (("markdown", "md"), ("csv", "csv")):
            self.client.log_text(self.parent_id, report(rows, list(COMPARE_METRICS), fmt, True, verdict) + "\n",
                                 f"comparison.{suffix}")
            self.client.log_text(self.parent_id, pairwise_report(verdict, fmt) + "\n", f"pairwise.{suffix}")
        total = sum(r.get("seconds", 0) for r in self.rounds)
        note = "\n\n".join([f"**{verdict.short()}**", f"stopped: {reason} after {len(self.rounds)} rounds",
                            pairwise_report(verdict, "markdown") if verdict.pairs else "", rounds_table(self.rounds)])
        run = tracking.Run(self.client, self.parent_id)
        run.set_tags({TAG_STOP_REASON: reason, MLFLOW_NOTE: note, "jobs_failed": len(self.failed_jobs),
                      "wall_seconds_last_session": round(wall, 1), "training_seconds_rounds": round(total, 1)})
        best = [r.data.metrics["test_accuracy"] for r in runs if "test_accuracy" in r.data.metrics]
        if best:
            run.log_metrics({"best_test_accuracy": max(best)}, step=0)
        champion = sweep_champion(self.config, self.client, self.parent_id, runs, self.failed_jobs)
        self._close("FAILED" if self.failed_jobs else "FINISHED")
        parent = self.client.get_run(self.parent_id)
        print("\n".join(["", f"sweep {parent.info.run_name}: {len(runs)} runs in {len(self.rounds)} rounds; "
                         f"stopped: {reason}; wall time {wall / 60:.1f} min",
                         summary_table(runs, self.options.metric, verdict), "",
                         f"parent run {self.parent_id}: rounds.md, rounds.json, comparison.md, pairwise.md in "
                         f"{parent.info.artifact_uri}", *([champion.line()] if champion is not None else []),
                         *pointer_lines(self.uri, parent.info.experiment_id)]),
              flush=True)
        if self.failed_jobs:
            print(f"error: {len(self.failed_jobs)} sweep jobs failed (job {', '.join(self.failed_jobs)}; reasons in "
                  f"{self.sweep_dir}/<job>/{JOB_FAILED_FILE}); see MLflow run {self.parent_id}", file=sys.stderr)
            sys.exit(1)


def progress_line(entry: Mapping[str, Any], elapsed: float) -> str:
    """One line a round: seeds trained, pairs resolved, and what is still needed."""
    seeds = sorted(set(entry["seeds"].values()))
    span = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    need = (f"about {entry['needed_runs']} more runs" +
            (f", about {entry['needed_minutes']:.1f} min at this round's pace" if entry["needed_minutes"] else "")
            if entry["needed_runs"] else "none")
    stop = f"; stopping: {entry['stop']}" if entry.get("stop") else ""
    return (f"round {entry['round']}: {entry['jobs']} jobs in {entry['seconds'] / 60:.1f} min, {entry['runs']} runs "
            f"({span} seeds a group), {entry['resolved']} of {entry['pairs']} pairs resolved; still needed: {need}; "
            f"{elapsed / 60:.1f} min so far{stop}")


def rounds_table(rounds: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| round | jobs | minutes | runs | seeds a group | pairs resolved | verdict so far | stop |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        seeds = ", ".join(f"{g} {n}" for g, n in r["seeds"].items())
        lines.append(f"| {r['round']} | {r['jobs']} | {r['seconds'] / 60:.1f} | {r['runs']} | {seeds} | "
                     f"{r['resolved']} of {r['pairs']} | {r['verdict']} | {r.get('stop') or ''} |")
    return "\n".join(lines)


def run_sweep(config: DictConfig, launcher: Any, options: Options, arguments: Sequence[str]) -> None:
    """The sweeper's body: a user's mistake is one line and exit code 2, before any run exists."""
    try:
        check_options(options, config)
        sweep = UntilResolved(config, launcher, options, arguments)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sweep.run()
