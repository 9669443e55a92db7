"""The commands as users run them: real processes, real Hydra multiruns, a real MLflow store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from conftest import TINY_DATA, TINY_MODEL, TINY_TRAINER

BIN = Path(sys.executable).parent


def run_cli(command: str, args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(BIN / command), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def store(tmp_path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_describe_prints_one_json_line_and_saves_the_model(tmp_path):
    result = run_cli("resnet-lab-describe", ["model=resnet18", "data=cifar10", "describe.format=json",
                                             "describe.save_model=built/resnet18.keras"], tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    report = json.loads(line)
    assert {"name", "depth", "params_total", "params_trainable", "flops", "input_shape", "output_shape",
            "stages"} <= set(report)
    assert report["name"] == "resnet18" and report["depth"] == 18
    assert report["input_shape"] == [32, 32, 3] and report["output_shape"] == [10]
    assert [s["name"] for s in report["stages"]] == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert (tmp_path / "built" / "resnet18.keras").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]  # describe leaves nothing else behind


def test_a_config_mistake_is_one_line_exit_2_and_no_run(tmp_path):
    result = run_cli("resnet-lab-train", ["model=resnet18", "model.layer_dims=[2,2,2]"], tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: model.layer_dims=[2, 2, 2] is not allowed: one entry per stage; it has 3 entries "
                      "but model.widths=[64, 128, 256, 512] has 4"]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("override, line", [
    ("model=resnet19", "error: model='resnet19' is not allowed: one of 'cifar_resnet110', "),
    ("model.widht=[1,2]", "error: model.widht is not a config key: the keys here are name, stem, block, widths,"),
    ("trainer.epochs=ten", "error: trainer.epochs='ten' is not allowed: a value of type integer"),
    ("model/block=resnext", "error: model/block='resnext' is not allowed: one of 'basic', 'bottleneck',"),
    ("model.widths=[1,2", "error: cannot read the override 'model.widths=[1,2': "),
    ("+hydra.callbacks.x._target_=os.system", "error: hydra.callbacks.x._target_='os.system' is not allowed: one of "
                                              "'resnet_lab.sweep.MlflowSweepCallback'"),
])
def test_mistakes_found_while_composing_are_one_line_too(tmp_path, override, line):
    result = run_cli("resnet-lab-train", [override], tmp_path)
    assert result.returncode == 2
    lines = [l for l in result.stderr.splitlines() if l.strip() and "absl" not in l and not l.startswith(("I0000", "E0000", "W0000"))]
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def sweep(tmp_path: Path, extra: List[str]) -> subprocess.CompletedProcess:
    return run_cli("resnet-lab-train", ["-m", *TINY_MODEL, *TINY_DATA, *TINY_TRAINER, "trainer.epochs=1",
                                        "hydra.sweep.dir=sweep", *extra], tmp_path)


def sweep_runs(tmp_path: Path):
    client = store(tmp_path)
    experiment = client.get_experiment_by_name("resnet-lab")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("resnet_lab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("resnet_lab.role") == "train"]
    return parents, children


def test_a_multirun_gets_a_parent_run_holding_one_child_per_job(tmp_path):
    result = sweep(tmp_path, ["model.layer_dims=[1,1],[2,2]"])
    assert result.returncode == 0, result.stderr[-3000:]
    parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["resnet_lab.sweep_dir"] == str((tmp_path / "sweep").resolve())
    assert {c.data.tags[MLFLOW_PARENT_RUN_ID] for c in children} == {parent.info.run_id}
    assert sorted(c.data.tags["depth"] for c in children) == ["10", "6"]
    assert all(c.info.status == "FINISHED" for c in children)
    table = store(tmp_path).download_artifacts(parent.info.run_id, "comparison.md", str(tmp_path))
    assert Path(table).read_text().count("FINISHED") == 2
    assert not list(tmp_path.glob("sweep/*/mlflow.db"))  # the store never scatters into job folders


def test_a_failing_job_does_not_stop_the_sweep_and_fails_the_parent(tmp_path):
    # cifar10 fails inside its run (no data); imagenet fails validation before any run exists.
    result = sweep(tmp_path, [f"data.path={tmp_path / 'missing'}", "data.name=cifar10,synthetic,imagenet"])
    assert result.returncode == 1
    assert "2 of 3 sweep jobs failed (job 0, 2;" in result.stderr
    assert "data.name='imagenet' is not allowed" in (tmp_path / "sweep" / "2" / "job_failed.txt").read_text()
    parents, children = sweep_runs(tmp_path)
    assert parents[0].info.status == "FAILED" and parents[0].data.tags["jobs_failed"] == "2"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "cifar-10-python.tar.gz" in failed.data.tags["resnet_lab.error"]
