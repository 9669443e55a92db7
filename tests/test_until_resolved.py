"""``hydra/sweeper=until_resolved``: its grid and settings, its one-line refusals, and (slow) real sweeps in rounds
through joblib and submitit, interrupted and resumed, into one real SQLite store.

The tiny jobs of ``debug=tiny`` give cifar_resnet20 and cifar_resnet32 the same network (one block a stage), so
their results are identical and no pair ever resolves: every sweep runs to its seed budget, in a known number
of rounds.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import List

import pytest
from helpers.configs import TINY
from helpers.processes import run_cli, start_cli
from helpers.stores import sweep_runs
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from resnet_lab.errors import ConfigError
from resnet_lab.sweeps.until_resolved import Options
from resnet_lab.sweeps.until_resolved.grid import grid_of

OPTIONS = Options(seeds_per_round=None, max_seeds=30, max_minutes=60, level=0.05, min_effect=0.01,
                  metric="test_accuracy", spending="obrien_fleming")
# Two groups, seeds 1 and 2 in round 1, one more a round up to 3 (looks at 2 and 3 seeds): two rounds, 6 runs.
ROUNDS = ["model=cifar_resnet20,cifar_resnet32", "seed=1,2", "hydra/sweeper=until_resolved",
          "hydra.sweeper.seeds_per_round=1", "trainer.epochs=1", "trainer.verbose=0", "tracking.log_model=false"]


def test_the_grid_is_the_basic_sweepers_and_the_seeds_are_round_ones():
    grid = grid_of({"model": "cifar_resnet20,cifar_resnet32", "seed": "1,2,3"}, ["trainer.epochs=2"], OPTIONS)
    assert list(grid.groups) == ["model=cifar_resnet20", "model=cifar_resnet32"]
    assert grid.groups["model=cifar_resnet32"] == ["model=cifar_resnet32", "trainer.epochs=2"]
    assert grid.seeds == [1, 2, 3]
    assert grid_of({"model": "cifar_resnet20,cifar_resnet32"}, [], OPTIONS).seeds == [1, 2, 3]  # none given
    assert grid_of({"model": "a,b", "seed": "1,2,3"}, ["seed=7,8"], OPTIONS).seeds == [7, 8]  # the command wins


@pytest.mark.parametrize("params,arguments,match", [
    ({"model": "a,b"}, ["seed=5"], "seed='5' is not allowed: two or more seeds"),
    ({"model": "a,b", "seed": "x,y"}, [], "seed='x,y' is not allowed: integers"),
])
def test_a_grid_that_cannot_be_compared_is_refused_naming_the_key(params, arguments, match):
    with pytest.raises(ConfigError, match=match):
        grid_of(params, arguments, OPTIONS)


@pytest.mark.parametrize("mistake,expected", [
    # the margin's old name still reaches the check, which names the new one
    (["hydra.sweeper.margin=0"], "error: hydra.sweeper.min_effect=0.0 is not allowed: a positive margin"),
    (["model=cifar_resnet20,cifar_resnt32"], "cifar_resnt32"),  # a job's mistake, before round 1
], ids=["setting", "job"])
def test_a_mistake_is_one_line_and_no_run_starts(tmp_path, tmp_store, mistake, expected):
    result = run_cli("resnet-lab-train", ["-m", *TINY, *ROUNDS, *mistake], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if "hydra.sweeper.margin=0" in mistake:
        assert "note: hydra.sweeper.margin is now hydra.sweeper.min_effect" in result.stderr
    _, parents, children = sweep_runs(tmp_path)
    assert parents == [] and children == []


def rounds_of(client, parent) -> List[dict]:
    return json.loads(Path(client.download_artifacts(parent.info.run_id, "rounds.json")).read_text())


def assert_one_parent_holds_every_round(client, parents, children, rounds: int, runs: int) -> None:
    assert len(parents) == 1, [p.data.tags.get("resnet_lab.sweep_dir") for p in parents]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["resnet_lab.stop_reason"] == "seed budget"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert {c.data.tags[MLFLOW_PARENT_RUN_ID] for c in children} == {parent.info.run_id}
    seeds = sorted((c.data.tags["resnet_lab.group"], c.data.params["seed"]) for c in finished)
    assert len(seeds) == runs and len(set(seeds)) == runs, seeds  # no seed of a group trained twice
    logged = rounds_of(client, parent)
    assert [r["round"] for r in logged] == list(range(1, rounds + 1))
    assert logged[-1]["stop"] == "seed budget" and logged[-1]["runs"] == runs
    steps = [m.step for m in client.get_metric_history(parent.info.run_id, "round_runs")]
    assert sorted(set(steps)) == list(range(1, rounds + 1))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"rounds.md", "rounds.json", "comparison.md", "pairwise.md", "pairwise.csv"} <= artifacts
    note = parent.data.tags["mlflow.note.content"]
    assert "stopped: seed budget after" in note and "| round |" in note


@pytest.mark.slow
def test_joblib_rounds_interrupted_and_resumed_train_no_finished_seed_again(tmp_path, tmp_store):
    """Round 1 (4 jobs) ends, Ctrl-C lands in round 2; the same command, in a new sweep folder, continues the
    same parent and trains only the seeds no FINISHED run has (up to 3 a group: 2 rounds, 6 runs)."""
    args = ["-m", *TINY, *ROUNDS, "hydra.sweeper.max_seeds=3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    first = start_cli("resnet-lab-train", [*args, "hydra.sweep.dir=first"], tmp_path)
    lines = []
    for line in first.stdout:
        lines.append(line)
        if line.startswith("round 1:"):
            break
    assert any(line.startswith("round 1:") for line in lines), "".join(lines)[-3000:] + first.stderr.read()[-3000:]
    assert "2 seeds a group" in lines[-1] and "0 of 1 pairs resolved" in lines[-1]
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=300)
    time.sleep(2)  # joblib's workers go with their parent
    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    done_before = {(c.data.tags["resnet_lab.group"], c.data.params["seed"]) for c in children
                   if c.info.status == "FINISHED"}
    assert len(done_before) >= 4 and [r["round"] for r in rounds_of(client, parents[0])] == [1]

    again = run_cli("resnet-lab-train", [*args, "hydra.sweep.dir=again"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"continuing parent run {parents[0].info.run_id}" in again.stdout
    assert "stopped: seed budget" in again.stdout
    client, parents, children = sweep_runs(tmp_path)
    trained_again = [c for c in children if c.data.tags["resnet_lab.sweep_dir"].endswith("again")
                     and (c.data.tags["resnet_lab.group"], c.data.params["seed"]) in done_before]
    assert trained_again == []
    assert_one_parent_holds_every_round(client, parents, children, rounds=2, runs=6)


@pytest.mark.slow
def test_submitit_local_runs_the_rounds_through_the_cluster_code_path(tmp_path, tmp_store):
    result = run_cli("resnet-lab-train", ["-m", *TINY, *ROUNDS, "hydra.sweeper.max_seeds=3",
                                          "hydra/launcher=submitit_local", "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("round ")]
    assert len(progress) == 2 and "stopping: seed budget" in progress[-1], result.stdout[-3000:]
    assert "Submitit 'local' sweep output dir" in result.stdout
    client, parents, children = sweep_runs(tmp_path)
    assert_one_parent_holds_every_round(client, parents, children, rounds=2, runs=6)
    compare = run_cli("resnet-lab-compare", ["compare.parent=latest"], tmp_path)
    assert compare.returncode == 0, compare.stderr[-2000:]
    assert "sequential (until_resolved)" in compare.stdout  # not the fixed-sample tests, which ignore the looks


@pytest.mark.slow
def test_a_round_whose_every_job_fails_stops_the_sweep_instead_of_trying_more_seeds(tmp_path, tmp_store):
    """Data that no job can read (found when a job loads it, not when configs are checked): round 1 fails whole,
    and the sweep stops there, FAILED, saying so, rather than drawing seeds until its budgets run out."""
    result = run_cli("resnet-lab-train", ["-m", "model=cifar_resnet20,cifar_resnet32", "seed=1,2",
                                          "hydra/sweeper=until_resolved", "data=image_folder",
                                          f"data.path={tmp_path / 'missing'}", "data.num_classes=2",
                                          "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "stopping: jobs failed" in result.stdout and "error: 4 of 4 sweep jobs failed" in result.stderr
    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FAILED" and len(children) == 4
    assert parents[0].data.tags["resnet_lab.stop_reason"] == "jobs failed"
