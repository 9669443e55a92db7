"""The team setup's parts that need no service: credentials kept out of Hydra's files, the Slurm job a run
records, a cancelled job's clean end, the scripts' usage, and the cluster tests' rule (skip on a
developer's machine, fail in CI). The services themselves are tested in test_cluster.py (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from helpers.cluster import SCRIPTS, unavailable
from helpers.configs import TINY
from helpers.processes import run_cli

from resnet_lab.runtime.slurm import scheduler_tags
from resnet_lab.tracking import credentials_from_uri_args


def test_a_password_in_an_http_uri_goes_to_the_environment_not_to_the_overrides():
    environ = {}
    args = ["-m", "tracking.uri=http://alice:s3cr%40t@mlflow.lab:5000/", "seed=1,2"]
    assert credentials_from_uri_args(args, environ) == ["-m", "tracking.uri=http://mlflow.lab:5000/", "seed=1,2"]
    assert environ == {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "s3cr@t"}
    # Other stores keep their URI (a database needs its password in it); Hydra's files are redacted instead.
    kept = ["tracking.uri=postgresql://alice:pw@db/mlflow", "tracking.uri=http://mlflow.lab:5000", "x=http://a:b@c"]
    assert credentials_from_uri_args(kept, environ) == kept


@pytest.mark.slow  # a whole sweep; the redaction itself is tested in tests/tracking/test_run_identity.py
def test_hydra_files_of_every_job_and_the_sweep_keep_no_uri_password(tmp_path):
    secret = "pw-SECRET-9"
    result = run_cli("resnet-lab-train", ["-m", *TINY, "trainer.epochs=1", "trainer.verbose=0", "seed=1,2",
                                          "tracking.enabled=false", "hydra.sweep.dir=sweep",
                                          f"tracking.uri=postgresql://alice:{secret}@db.lab/mlflow"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [p for p in (tmp_path / "sweep").rglob("*.yaml")]
    names = sorted(str(p.relative_to(tmp_path / "sweep")) for p in written)
    assert names == ["0/.hydra/config.yaml", "0/.hydra/hydra.yaml", "0/.hydra/overrides.yaml",
                     "1/.hydra/config.yaml", "1/.hydra/hydra.yaml", "1/.hydra/overrides.yaml", "multirun.yaml"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert "postgresql://alice:***@db.lab/mlflow" in (tmp_path / "sweep" / "0" / ".hydra" / "config.yaml").read_text()


def test_a_run_under_slurm_records_its_job():
    environ = {"SLURM_JOB_ID": "42", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "2",
               "SLURM_CLUSTER_NAME": "lab", "SLURMD_NODENAME": "node1", "HOME": "/root"}
    assert scheduler_tags(environ) == {"slurm.job_id": "42", "slurm.array_job_id": "40", "slurm.array_task_id": "2",
                                       "slurm.cluster": "lab", "slurm.node": "node1"}
    assert scheduler_tags({"HOME": "/root"}) == {}


@pytest.mark.parametrize("slurm", [True, False], ids=["under-slurm", "elsewhere"])
@pytest.mark.parametrize("sigint", ["default", "ignored"], ids=["sigint-default", "started-in-background"])
def test_sigterm_under_slurm_is_handled_as_ctrl_c(slurm, sigint):
    """scancel sends SIGTERM: under Slurm it must end the run as Ctrl-C does (KILLED), not be ignored,
    also in a process that a non-interactive shell started in the background (SIGINT ignored)."""
    script = textwrap.dedent(f"""
        import os, signal, time
        from resnet_lab.runtime.slurm import end_cleanly_when_cancelled, was_cancelled
        if {sigint == "ignored"}:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what submitit does to SIGTERM in a job
        end_cleanly_when_cancelled()
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # handled before kill() returns, or the sleep is cut short
            time.sleep(0.5)
            print("ignored")
        except KeyboardInterrupt:
            print("interrupted", was_cancelled())
    """)
    env = {**os.environ, "SLURM_JOB_ID": "7"} if slurm else {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == ("interrupted True" if slurm else "ignored"), out.stderr


@pytest.mark.parametrize("name", ["slurm-local.sh", "tracking-server.sh"])
def test_the_scripts_say_how_to_use_them(name):
    for args in ([], ["restart-everything"]):
        result = subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert result.stderr.startswith(f"usage: {name} start|stop|status|env")


def test_services_that_cannot_start_skip_on_a_laptop_and_fail_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Slurm is not installed"):
        unavailable("Slurm is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"Slurm is not installed \(CI=true: the cluster tests must run"):
        unavailable("Slurm is not installed")
