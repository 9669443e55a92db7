"""A round's work: read the seeds that finished, choose the jobs that bring each group to its next look, and
launch them through the configured launcher, counting those that failed against the seed budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

from resnet_lab import tracking
from resnet_lab.sweeps.jobs import has_failed, output_dir_of, skipped_run_id
from resnet_lab.sweeps.parent import ParentRun
from resnet_lab.sweeps.until_resolved.grid import Grid

Results = Tuple[Dict[str, List[float]], Dict[str, List[int]], List[Any]]


@dataclass
class Seeds:
    """What the sweep knows of its seeds beyond MLflow's finished runs: those that failed, the FINISHED runs of
    earlier sweeps that skipped jobs stand for, and how many jobs it launched."""

    grid: Grid
    max_seeds: int
    failed: Dict[str, set] = field(default_factory=dict)
    failed_jobs: List[str] = field(default_factory=list)
    adopted: List[str] = field(default_factory=list)
    launched: int = 0
    names: Dict[str, str] = field(default_factory=dict)  # group -> its runs' group name

    def __post_init__(self) -> None:
        self.failed = {g: set() for g in self.grid.groups}

    def results(self, parent: ParentRun, hashes: Mapping[str, str], metric: str) -> Results:
        """Per group, the finished seeds' values and seeds in seed order; and the runs they come from."""
        runs = parent.children(finished_training_only=True)
        known = {r.info.run_id for r in runs}
        runs += [parent.client.get_run(i) for i in dict.fromkeys(self.adopted) if i not in known]
        by_hash = {h: g for g, h in hashes.items()}
        found: Dict[str, Dict[int, float]] = {g: {} for g in self.grid.groups}
        used = []
        for run in runs:
            group = by_hash.get(run.data.tags.get(tracking.TAG_GROUP_HASH, ""))
            value = run.data.metrics.get(metric)
            seed = run.data.params.get("seed")
            if group is None or value is None or seed is None or not math.isfinite(value):
                continue
            if int(seed) not in found[group]:
                found[group][int(seed)] = float(value)
                used.append(run)
                self.names.setdefault(group, run.data.tags.get(tracking.TAG_GROUP, group))
        values, seeds = {}, {}
        for group, by_seed in found.items():
            order = sorted(by_seed, key=self.grid.rank)
            values[group], seeds[group] = [by_seed[s] for s in order], order
        return values, seeds, used

    def jobs_for(self, targets: Mapping[str, int], done: Mapping[str, List[int]]) -> List[List[str]]:
        """The overrides of the jobs that bring each group to its target seeds a group."""
        jobs = []
        for group, target in targets.items():
            have = set(done.get(group, []))
            missing = target - len(have)
            tried = len(have) + len(self.failed[group])  # a failed seed counts against the budget too
            for seed in self.grid.seed_order():
                if missing <= 0 or tried >= self.max_seeds:
                    break
                if seed in have or seed in self.failed[group]:
                    continue
                jobs.append([*self.grid.groups[group], f"seed={seed}", "tracking.skip_finished=true"])
                missing, tried = missing - 1, tried + 1
        return jobs

    def launch(self, launcher: Any, jobs: List[List[str]]) -> int:
        """Run the jobs; returns how many failed."""
        failed_before = len(self.failed_jobs)
        returns = launcher.launch(jobs, initial_job_idx=self.launched)
        for job, ret in zip(jobs, returns):
            folder = output_dir_of(ret)
            adopted = skipped_run_id(folder)
            if adopted:
                self.adopted.append(adopted)
            failed = has_failed(folder)
            try:
                _ = ret.return_value  # raises when the job raised
            except Exception:
                failed = True
            if failed:
                seed = int(next(x for x in job if x.startswith("seed=")).split("=", 1)[1])
                self.failed[self.grid.group_of(job)].add(seed)
                self.failed_jobs.append(folder.name if folder is not None else "?")
        self.launched += len(jobs)
        return len(self.failed_jobs) - failed_before
