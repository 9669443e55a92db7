"""Sweeps through every launcher, as users run them: real processes, one real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

import mlflow.artifacts
import pytest
from helpers.configs import TINY
from helpers.processes import AS_A_USER, noise_in, run_cli
from helpers.stores import closed_port, seed_store, sweep_runs
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")  # logged once per epoch
FINAL_METRICS = ("test_accuracy", "test_loss", "train_seconds", "train_images_per_s")  # once per run


def sweep(tmp_path: Path, extra: List[str], env=None):
    return run_cli("resnet-lab-train", ["-m", *TINY, "trainer.verbose=0", "tracking.log_model=false",
                                        "hydra.sweep.dir=sweep", *extra], tmp_path, env=env)


def job_logs(tmp_path: Path) -> List[str]:
    """What every job wrote to its own files: Hydra's job log, and submitit's stdout and stderr."""
    folder = tmp_path / "sweep"
    return [path.read_text(errors="replace") for pattern in ("*/*.log", ".submitit/*/*.out", ".submitit/*/*.err")
            for path in folder.glob(pattern)]


# Secrets a user's environment may hold, and one a job's environment gets from Hydra: none may be recorded.
SECRETS = {"MLFLOW_TRACKING_USERNAME": "user-SECRET-1", "MLFLOW_TRACKING_PASSWORD": "pass-SECRET-2",
           "MLFLOW_TRACKING_TOKEN": "token-SECRET-3", "AWS_SECRET_ACCESS_KEY": "aws-SECRET-4"}


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory, store_template):
    """Three seeds of one config through the basic launcher, as a user runs them (models logged, no log level of
    the tests' in the environment), with secrets in the environment that a SQLite store ignores."""
    folder = tmp_path_factory.mktemp("seed-sweep")
    seed_store(store_template, folder)
    result = sweep(folder, ["seed=1,2,3", "trainer.epochs=1", "tracking.log_model=true",
                            "++hydra.job.env_set.API_TOKEN=envset-SECRET-5"], env={**AS_A_USER, **SECRETS})
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


@pytest.mark.xdist_group("seed_sweep")  # one worker: the sweep runs once
def test_a_seed_sweep_sets_up_once_and_its_log_says_only_what_matters(seed_sweep):
    """The basic launcher runs every job in one process: the later seeds take the first one's set-up, and no
    native notice or retracing warning reaches the user."""
    folder, result = seed_sweep
    assert not noise_in(result.stdout, result.stderr, *job_logs(folder)), result.stderr
    assert result.stderr.count("set-up shared with an earlier seed of this config") == 2
    client, (parent,), children = sweep_runs(folder)
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    assert len({c.data.metrics["test_loss"] for c in children}) == 3  # three seeds, three models
    assert_parent_holds_its_children(client, parent, children, 3)
    # The sweep ends on its comparison (one group of three seeds) and where to see it.
    summary = result.stdout[result.stdout.index(f"sweep {parent.info.run_name}"):]
    header, group = summary.splitlines()[1:3]
    assert "depth" in header and "test_accuracy" in header and group.split()[-6] == "3"
    assert f"parent run {parent.info.run_id}" in summary
    assert (f"MLflow UI: http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs?workflowType="
            f"machine_learning&viewStateShareKey=resnet-lab-comparison") in summary


@pytest.mark.xdist_group("seed_sweep")
def test_environment_variables_and_secrets_never_reach_params_tags_or_artifacts(seed_sweep):
    """Nothing of the environment is recorded: not in any run's params, tags or metrics, nor in any file of the
    runs' artifacts (the parent's comparison too) or of their logged models."""
    folder, _ = seed_sweep
    client, (parent,), children = sweep_runs(folder)
    files = []
    for run in (parent, *children):
        recorded = [*run.data.params.items(), *run.data.tags.items(), *run.data.metrics]
        assert recorded and not [item for item in recorded if "SECRET" in str(item)], run.info.run_name
        files += Path(client.download_artifacts(run.info.run_id, "", str(folder / "read" / run.info.run_id))).rglob("*")
    assert all(len(c.data.params) > 20 for c in children)
    models = client.search_logged_models([parent.info.experiment_id])
    assert len(models) == 3
    for model in models:
        files += Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location,
                                                          dst_path=str(folder / "read" / model.model_id))).rglob("*")
    files = [path for path in files if path.is_file()]
    assert {"config.yaml", "overrides.txt", "model_summary.txt", "model.keras", "comparison.md"} <= {
        path.name for path in files}
    assert not [path for path in files if b"SECRET" in path.read_bytes()]


def assert_every_step_once(client, children, epochs: int) -> None:
    for child in children:
        for name in EPOCH_METRICS:
            steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, name))
            assert steps == list(range(1, epochs + 1)), (child.info.run_name, name, steps)
        for name in FINAL_METRICS:
            steps = [m.step for m in client.get_metric_history(child.info.run_id, name)]
            assert steps == [epochs], (child.info.run_name, name, steps)


def assert_parent_holds_its_children(client, parent, children, jobs: int) -> None:
    assert parent.info.status == "FINISHED"
    assert {c.data.tags[MLFLOW_PARENT_RUN_ID] for c in children} == {parent.info.run_id}
    assert sorted(c.data.tags["resnet_lab.job_num"] for c in children) == [str(i) for i in range(jobs)]
    assert {c.data.tags["resnet_lab.sweep_dir"] for c in children} == {parent.data.tags["resnet_lab.sweep_dir"]}
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.md", "comparison.csv", "comparison_runs.md", "comparison_runs.csv", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"plots/accuracy_vs_depth.png", "plots/accuracy_vs_params.png", "plots/accuracy_vs_train_time.png"}
    table = Path(client.download_artifacts(parent.info.run_id, "comparison_runs.csv")).read_text()
    assert sorted(line.split(",")[0] for line in table.splitlines()[1:]) == sorted(c.info.run_id for c in children)


@pytest.mark.slow
def test_four_joblib_workers_on_one_sqlite_store_lose_nothing(tmp_path, tmp_store):
    epochs = 3
    result = sweep(tmp_path, ["seed=1,2,3,4", f"trainer.epochs={epochs}", "hydra/launcher=joblib",
                              "hydra.launcher.n_jobs=4"], env=AS_A_USER)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not noise_in(result.stdout, result.stderr, *job_logs(tmp_path))
    assert "Joblib.Parallel(n_jobs=4" in result.stdout  # really in four worker processes (Hydra logs to stdout)
    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 4
    assert all(c.info.status == "FINISHED" for c in children)
    # Named by every override that changes the run (one rule for single runs and sweep jobs).
    assert sorted(c.info.run_name for c in children) == [f"cifar_resnet20-tiny-seed{i}-ep3" for i in (1, 2, 3, 4)]
    assert {c.data.tags["resnet_lab.group"] for c in children} == {"cifar_resnet20-tiny-ep3"}  # repeats
    assert_every_step_once(client, children, epochs)
    assert_parent_holds_its_children(client, parents[0], children, 4)


@pytest.mark.slow
def test_submitit_local_runs_the_cluster_code_path(tmp_path, tmp_store):
    result = sweep(tmp_path, ["model.layer_dims=[1,1,1],[2,2,2]", "trainer.epochs=1", "hydra/launcher=submitit_local"],
                   env=AS_A_USER)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not noise_in(result.stdout, result.stderr, *job_logs(tmp_path))
    assert "Submitit 'local' sweep output dir" in result.stdout
    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 2
    assert sorted(c.info.run_name for c in children) == ["cifar_resnet20-tiny-dims[1,1,1]-ep1",
                                                         "cifar_resnet20-tiny-dims[2,2,2]-ep1"]
    assert_every_step_once(client, children, 1)
    assert_parent_holds_its_children(client, parents[0], children, 2)


@pytest.mark.slow
def test_a_rerun_with_skip_finished_trains_only_the_missing_jobs(tmp_path, tmp_store):
    first = sweep(tmp_path, ["seed=1", "trainer.epochs=1", "hydra.sweep.dir=first"])
    assert first.returncode == 0, first.stderr[-3000:]
    again = sweep(tmp_path, ["seed=1,2", "trainer.epochs=1", "tracking.skip_finished=true", "hydra.sweep.dir=again"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already FINISHED with this config" in again.stderr
    client, parents, children = sweep_runs(tmp_path)
    assert sorted(c.data.params["seed"] for c in children) == ["1", "2"]  # 2 runs trained, not 3
    rerun = next(p for p in parents if p.data.tags["resnet_lab.sweep_dir"].endswith("again"))
    assert rerun.data.tags["jobs"] == "2" and rerun.data.tags["jobs_skipped"] == "1"
    table = Path(client.download_artifacts(rerun.info.run_id, "comparison_runs.csv")).read_text()
    assert sorted(line.split(",")[0] for line in table.splitlines()[1:]) == sorted(c.info.run_id for c in children)


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
def test_an_unreachable_tracking_server_fails_in_seconds_before_training(tmp_path, multirun):
    uri = f"http://127.0.0.1:{closed_port()}"
    args = [*TINY, f"tracking.uri={uri}", "hydra.sweep.dir=sweep"]
    started = time.monotonic()
    result = run_cli("resnet-lab-train", ["-m", *args, "seed=1,2"] if multirun else args, tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"tracking.uri='{uri}' is not allowed: a reachable MLflow tracking server" in errors[0]
    assert "Traceback" not in result.stderr
    assert "data synthetic" not in result.stderr  # no data was loaded, nothing was built
    assert elapsed < 60  # start-up included; MLflow's own retries would take minutes
    assert not list(tmp_path.glob("sweep/*/"))  # no job started
