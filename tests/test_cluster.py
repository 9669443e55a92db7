"""The team setup end to end: sweeps submitted to a real (one-node) Slurm cluster, logging over HTTP to an
MLflow server with a PostgreSQL store, proxied artifacts and basic authentication; eight jobs at once; the
server killed mid-sweep; a job cancelled with scancel and resumed. Both services are started by the
repository's scripts, once per session (tests/helpers/cluster.py)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict

import pytest
from helpers.cluster import script
from helpers.configs import REPO, TINY
from helpers.processes import BIN, _env, run_cli, start_cli
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

# One worker holds the services: the tests share them, and on a 2-core machine more would only queue.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

SLURM = "hydra/launcher=slurm_local"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds")
RUN_ARTIFACTS = {"config.yaml", "overrides.txt", "model_summary.txt", "evaluation/confusion_matrix.csv",
                 "evaluation/confusion_matrix.png", "evaluation/per_class_accuracy.csv",
                 "evaluation/training_curves.png", "outcomes/test.parquet"}
# Epochs of seconds, so that a kill or a cancel lands inside training.
LONG_EPOCHS = [*TINY, "data.train_size=8192", "trainer.epochs=6", "tracking.log_model=false"]
NO_CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": None, "MLFLOW_TRACKING_PASSWORD": None}


def team_setup_block(heading: str, index: int = 0) -> str:
    """The ``index``-th bash block of a section of docs/team-setup.md."""
    section = (REPO / "docs" / "team-setup.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)[index]


def runs_of(server, experiment: str):
    client = server.client()
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    parents = [r for r in runs if r.data.tags.get("resnet_lab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("resnet_lab.role") == "train"]
    return client, parents, children


def artifacts(client, run_id: str, path: str = "") -> set:
    found = set()
    for item in client.list_artifacts(run_id, path or None):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def assert_every_epoch_once(client, run, epochs: int) -> None:
    for name in EPOCH_METRICS:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, name))
        assert steps == list(range(1, epochs + 1)), (run.info.run_name, name, steps)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_accuracy")] == [epochs]


def assert_no_file_holds(secret: str, *folders: Path) -> None:
    leaks = [p for folder in folders for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaks


def wait_for_epoch(process: subprocess.Popen, state: Path, epoch: int, timeout: float = 300) -> int:
    """Wait until the job's checkpoint holds ``epoch`` epochs; the epochs it holds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.is_file():
            done = json.loads(state.read_text())["epochs_done"]
            if done >= epoch:
                return done
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"no checkpoint of epoch {epoch} within {timeout} s")


def test_the_documented_team_setup_runs_a_sweep_as_slurm_jobs_into_the_postgres_server(tmp_path, slurm, team_server):
    """docs/team-setup.md's commands as they are, on this session's ports and folders."""
    host = team_server.url.removeprefix("http://")
    commands = team_setup_block("Start the services and run a sweep")
    commands = commands.replace("127.0.0.1:5000", host).replace("scripts/", f"{REPO}/scripts/")
    env = _env({**slurm_settings(slurm), **team_server.env, **NO_CREDENTIALS, "PATH": f"{BIN}:{_env()['PATH']}"})
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^local\*\s+up\s+infinite\s+1\s+idle\s", result.stdout, re.M)  # sinfo, before the sweep

    client, (parent,), children = runs_of(team_server, "digits-depth")
    presets = ["cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56"]
    assert sorted(c.data.params["model.name"] for c in children) == presets
    assert {c.info.status for c in children} == {"FINISHED"} and parent.info.status == "FINISHED"
    # Each job ran as a job of one Slurm array, and Slurm says each completed.
    job_ids = [c.data.tags["slurm.job_id"] for c in children]
    assert len(set(job_ids)) == 4 and len({c.data.tags["slurm.array_job_id"] for c in children}) == 1
    assert sorted(c.data.tags["slurm.array_task_id"] for c in children) == ["0", "1", "2", "3"]
    assert slurm.sacct_states(*job_ids) == {job: "COMPLETED" for job in job_ids}
    # Over HTTP: every artifact went through the server into its artifact store.
    models = {m.source_run_id: m for m in client.search_logged_models([parent.info.experiment_id])}
    for child in children:
        assert child.info.artifact_uri.startswith("mlflow-artifacts:/")
        assert RUN_ARTIFACTS <= artifacts(client, child.info.run_id)
        model = models[child.info.run_id]  # each network a LoggedModel, its files on the server too
        assert model.status == "READY" and model.artifact_location.startswith("mlflow-artifacts:/")
        assert {"MLmodel", "model.keras"} <= {a.path for a in client.list_logged_model_artifacts(model.model_id)}
        assert_every_epoch_once(client, child, 2)
    champion = client.get_model_version_by_alias("digits-depth-debug", "champion")  # a debug sweep's own name
    assert champion.run_id in {c.info.run_id for c in children}
    stored = {p.name for p in (team_server.state / "artifacts").rglob("*") if p.is_file()}
    assert {"comparison_runs.csv", "confusion_matrix.png"} <= stored
    table = Path(client.download_artifacts(parent.info.run_id, "comparison_runs.csv", str(tmp_path))).read_text()
    assert sorted(line.split(",")[0] for line in table.splitlines()[1:]) == sorted(c.info.run_id for c in children)
    # resnet-lab-compare (the page's last command) lists every job of the sweep.
    compared = result.stdout.rsplit("MLflow UI: ", 1)[1]  # after the sweep's own summary
    listed = [line.split()[0] for line in compared.splitlines() if line.startswith("cifar_resnet")]
    assert sorted(listed) == sorted(c.data.tags["resnet_lab.group"] for c in children)
    # The UI answers behind its login.
    assert ui_status(team_server.url, None) == 401 and ui_status(team_server.url, team_server.credentials) == 200


def slurm_settings(slurm) -> Dict[str, str]:
    """The cluster's settings for its script: the same state folder and ports as the session's cluster."""
    conf = Path(slurm.env["SLURM_CONF"]).read_text()
    ports = dict(re.findall(r"^(SlurmctldPort|SlurmdPort)=(\d+)$", conf, re.M))
    return {"RESNET_LAB_SLURM_DIR": str(slurm.state), "RESNET_LAB_SLURMCTLD_PORT": ports["SlurmctldPort"],
            "RESNET_LAB_SLURMD_PORT": ports["SlurmdPort"]}


def ui_status(url: str, credentials) -> int:
    request = urllib.request.Request(url + "/")
    if credentials:
        token = f"{credentials['MLFLOW_TRACKING_USERNAME']}:{credentials['MLFLOW_TRACKING_PASSWORD']}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code


def test_eight_jobs_at_once_against_the_server_lose_nothing(tmp_path, team_server):
    epochs = 2
    result = run_cli("resnet-lab-train", ["-m", *TINY, "seed=1,2,3,4,5,6,7,8", f"trainer.epochs={epochs}",
                                          "trainer.verbose=0", "tracking.log_model=false",
                                          "hydra/launcher=joblib", "hydra.launcher.n_jobs=8",
                                          f"tracking.uri={team_server.url}", "tracking.experiment=eight",
                                          "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=8" in result.stdout
    client, (parent,), children = runs_of(team_server, "eight")
    assert len(children) == 8 and {c.info.status for c in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    for child in children:
        assert_every_epoch_once(client, child, epochs)
        assert artifacts(client, child.info.run_id) == RUN_ARTIFACTS
        assert child.data.tags[MLFLOW_PARENT_RUN_ID] == parent.info.run_id
    assert {"comparison.md", "comparison_runs.csv", "plots/accuracy_vs_depth.png"} <= artifacts(client, parent.info.run_id)


def test_a_server_killed_mid_sweep_and_restarted_loses_no_metric(tmp_path, slurm, team_server):
    """MLflow's client retries with backoff while the server is away; the jobs wait at the end of an epoch and
    go on. The password is given in the URI here: it must reach no file."""
    password = team_server.credentials["MLFLOW_TRACKING_PASSWORD"]
    uri = team_server.url.replace("http://", f"http://lab:{password}@")
    process = start_cli("resnet-lab-train", ["-m", SLURM, *LONG_EPOCHS, "seed=1,2", "trainer.verbose=0",
                                             f"tracking.uri={uri}", "tracking.experiment=outage",
                                             "hydra.sweep.dir=sweep"], tmp_path, env={**slurm.env, **NO_CREDENTIALS})
    done = [wait_for_epoch(process, tmp_path / "sweep" / job / "checkpoints" / "state.json", 1) for job in "01"]
    killed_at = time.time()
    team_server.kill()
    time.sleep(3)
    team_server.start()
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert max(done) < 6  # the kill landed inside training

    client, (parent,), children = runs_of(team_server, "outage")
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    for child in children:
        assert_every_epoch_once(client, child, 6)
        after = [m for m in client.get_metric_history(child.info.run_id, "loss") if m.timestamp > killed_at * 1000]
        assert after  # epochs trained after the kill reached the server
    for child in children:
        recorded = [*child.data.params.values(), *child.data.tags.values()]
        assert not [value for value in recorded if password in value]
    assert_no_file_holds(password, tmp_path, team_server.state / "artifacts")
    assert (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").is_file()  # the files checked exist


def test_a_cancelled_slurm_job_is_killed_keeps_its_checkpoint_and_resumes(tmp_path, slurm, team_server):
    args = ["-m", SLURM, *LONG_EPOCHS, "seed=1", "trainer.verbose=0", f"tracking.uri={team_server.url}",
            "tracking.experiment=cancel"]
    process = start_cli("resnet-lab-train", [*args, "hydra.sweep.dir=first"], tmp_path, env=slurm.env)
    state = tmp_path / "first" / "0" / "checkpoints" / "state.json"
    wait_for_epoch(process, state, 1)
    client, _, (run,) = runs_of(team_server, "cancel")
    job_id = run.data.tags["slurm.job_id"]  # what a user looks up in the run to cancel its job
    subprocess.run(["scancel", job_id], env=_env(slurm.env), check=True, timeout=60)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr[-3000:]
    assert "error: 1 of 1 sweep jobs failed" in stderr and "Traceback" not in stderr
    assert "cancelled by Slurm" in (tmp_path / "first" / "0" / "job_failed.txt").read_text()
    assert slurm.sacct_states(job_id)[job_id].startswith("CANCELLED")
    _, (first_parent,), (run,) = runs_of(team_server, "cancel")
    assert run.info.status == "KILLED" and first_parent.info.status == "FAILED"
    kept = json.loads(state.read_text())
    assert 1 <= kept["epochs_done"] < 6 and (state.parent / kept["last"]).is_file()

    again = run_cli("resnet-lab-train", [*args, "trainer.resume=true", "hydra.sweep.dir=second"], tmp_path,
                    env=slurm.env)
    assert again.returncode == 0, again.stderr[-3000:]
    client, parents, (resumed,) = runs_of(team_server, "cancel")
    second = next(p for p in parents if p.info.run_id != first_parent.info.run_id)
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    assert_every_epoch_once(client, resumed, 6)
    assert resumed.data.tags["slurm.job_id"] != job_id  # continued by the new Slurm job
    assert resumed.data.tags[MLFLOW_PARENT_RUN_ID] == second.info.run_id and second.info.status == "FINISHED"


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
@pytest.mark.parametrize("credentials", ["none", "wrong"])
def test_a_job_without_valid_credentials_is_refused_in_one_line(tmp_path, team_server, multirun, credentials):
    env = NO_CREDENTIALS if credentials == "none" else {"MLFLOW_TRACKING_USERNAME": "lab",
                                                        "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    args = [*TINY, f"tracking.uri={team_server.url}", "tracking.experiment=refused", "hydra.sweep.dir=sweep"]
    result = run_cli("resnet-lab-train", ["-m", *args, "seed=1,2"] if multirun else args, tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    server = f"error: the MLflow tracking server {team_server.url}"
    assert errors == [f"{server} asks for credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
                      if credentials == "none" else f"{server} refused the credentials of user 'lab': check "
                      "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"]
    assert "Traceback" not in result.stderr
    client, parents, children = runs_of(team_server, "refused")
    assert not parents and not children  # no run, so none left RUNNING


def test_the_scripts_report_both_services_running(slurm, team_server):
    status = script("tracking-server.sh", "status", team_server.env)
    assert status.returncode == 0 and "mlflow server: running" in status.stdout and "postgresql: running" in status.stdout
    status = script("slurm-local.sh", "status", slurm_settings(slurm))
    assert status.returncode == 0 and re.search(r"\sidle\s", status.stdout), status.stdout


def test_a_search_on_slurm_prunes_a_clearly_bad_trial_reporting_through_the_shared_storage(tmp_path, slurm,
                                                                                           team_server):
    """Each trial a Slurm job on its node: it reports its epochs to the study in a journal file the nodes share,
    and the trial with a learning rate of 10 is pruned there, not by the sweeper."""
    args = ["-m", SLURM, "hparams_search=optuna", *TINY, "trainer.epochs=3", "trainer.verbose=0",
            "trainer.batch_size=32", f"tracking.uri={team_server.url}", "tracking.experiment=search",
            "optimizer.learning_rate=tag(log,interval(0.001,10))", "hydra.sweeper.storage=searches/optuna.journal",
            "hydra.sweeper.enqueue=[{optimizer.learning_rate:0.01},{optimizer.learning_rate:0.02},"
            "{optimizer.learning_rate:10}]", "hydra.sweeper.n_trials=3", "hydra.sweeper.startup_trials=2",
            "hydra.sweeper.warmup_epochs=1", "hydra.sweep.dir=sweep"]
    result = run_cli("resnet-lab-train", args, tmp_path, env=slurm.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "optuna: trial 2 pruned after epoch 1" in result.stdout and "2 finished, 1 pruned, 0 failed" in result.stdout
    client, (parent,), children = runs_of(team_server, "search")
    (bad,) = [c for c in children if float(c.data.params["optimizer.learning_rate"]) == 10]
    assert bad.info.status == "FINISHED" and bad.data.tags["resnet_lab.pruned_epoch"] == "1"
    assert "slurm.job_id" in bad.data.tags and (tmp_path / "searches" / "optuna.journal").is_file()
    assert parent.info.status == "FINISHED" and parent.data.tags["mlflow.note.content"].startswith("**best trial ")
