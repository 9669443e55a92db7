"""The commands as users run them: real processes, real Hydra multiruns, a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest
from helpers.configs import TINY, TINY_DEPTH
from helpers.processes import run_cli
from helpers.stores import store, sweep_runs
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID


def test_describe_prints_one_json_line_saves_the_model_and_no_tensorflow_start_up_chatter(tmp_path):
    """TensorFlow's oneDNN and CUDA notices read like errors on a CPU machine; the commands keep them out.

    One process for both checks: a describe that builds and saves a model is where the notices would show.
    """
    result = run_cli("resnet-lab-describe", ["model=cifar_resnet20", "data=cifar10", "describe.format=json",
                                             "describe.save_model=built/cifar_resnet20.keras"], tmp_path,
                     env={"TF_CPP_MIN_LOG_LEVEL": None})
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    report = json.loads(line)
    assert {"name", "depth", "params_total", "params_trainable", "flops", "input_shape", "output_shape",
            "stages"} <= set(report)
    assert report["name"] == "cifar_resnet20" and report["depth"] == 20
    assert report["input_shape"] == [32, 32, 3] and report["output_shape"] == [10]
    assert [s["name"] for s in report["stages"]] == ["stem", "stage1", "stage2", "stage3"]
    assert (tmp_path / "built" / "cifar_resnet20.keras").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]  # describe leaves nothing else behind
    noise = ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit", "cpu_feature_guard")
    assert not [line for line in result.stderr.splitlines() if any(n in line for n in noise)], result.stderr


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
    ("tracking.register_model=lab:digits", "error: tracking.register_model='lab:digits' is not allowed: null or a "
                                           "name without '/', ':' or '@'"),
    ("+hydra.callbacks.x._target_=os.system", "error: hydra.callbacks.x._target_='os.system' is not allowed: one of "
                                              "'resnet_lab.sweeps.callback.MlflowSweepCallback'"),
])
def test_mistakes_found_while_composing_are_one_line_too(tmp_path, override, line):
    result = run_cli("resnet-lab-train", [override], tmp_path)
    assert result.returncode == 2
    lines = [l for l in result.stderr.splitlines() if l.strip() and "absl" not in l and not l.startswith(("I0000", "E0000", "W0000"))]
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def sweep(tmp_path: Path, extra: List[str]):
    return run_cli("resnet-lab-train", ["-m", *TINY, "trainer.epochs=1", "hydra.sweep.dir=sweep", *extra], tmp_path)


@pytest.mark.slow  # the default suite's sweep is test_sweeps.py's seed sweep
def test_a_multirun_gets_a_parent_holding_a_child_per_job_and_failing_jobs_do_not_stop_it(tmp_path, tmp_store):
    # Per data set, two depths: synthetic trains; cifar10 fails inside its run (no data).
    # No model logged: the sweep's bookkeeping is the point here (test_train.py checks the logged model).
    result = sweep(tmp_path, [f"data.path={tmp_path / 'missing'}", "data.name=synthetic,cifar10",
                              "model.layer_dims=[1,1,1],[2,2,2]", "tracking.log_model=false"])
    assert result.returncode == 1
    assert "2 of 4 sweep jobs failed (job 2, 3;" in result.stderr
    assert "cifar-10-python.tar.gz" in (tmp_path / "sweep" / "2" / "job_failed.txt").read_text()
    _, parents, children = sweep_runs(tmp_path)
    (parent,) = parents
    assert parent.info.status == "FAILED" and parent.data.tags["jobs_failed"] == "2"
    assert parent.data.tags["resnet_lab.sweep_dir"] == str((tmp_path / "sweep").resolve())
    assert {c.data.tags[MLFLOW_PARENT_RUN_ID] for c in children} == {parent.info.run_id}
    trained = [c for c in children if c.info.status == "FINISHED"]
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(trained) == 2 and len(failed) == 2 and len(children) == 4
    assert sorted(int(c.data.tags["depth"]) for c in trained) == [TINY_DEPTH, TINY_DEPTH + 6]
    assert all("cifar-10-python.tar.gz" in c.data.tags["resnet_lab.error"] for c in failed)
    table = Path(store(tmp_path).download_artifacts(parent.info.run_id, "comparison_runs.md", str(tmp_path)))
    assert table.read_text().count("FINISHED") == 2 and table.read_text().count("FAILED") == 2
    assert not list(tmp_path.glob("sweep/*/mlflow.db"))  # the store never scatters into job folders

    # The sweep ends on its comparison and where to see it.
    summary = result.stdout[result.stdout.index(f"sweep {parent.info.run_name}"):]
    assert "depth" in summary.splitlines()[1] and "test_accuracy" in summary.splitlines()[1]
    assert f"parent run {parent.info.run_id}" in summary
    experiment = parent.info.experiment_id
    assert (f"MLflow UI: http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
            f"&viewStateShareKey=resnet-lab-comparison") in summary
    assert f"serve it with: mlflow ui --backend-store-uri {tmp_store}" in summary


@pytest.mark.parametrize("value", ["model=cifar_resnet20,cifar_resnt32", "data.name=synthetic,imagenet"])
def test_a_mistake_in_one_value_of_a_sweep_is_one_line_and_leaves_no_run(tmp_path, tmp_store, value):
    result = sweep(tmp_path, [value])
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and ("cifar_resnt32" in errors[0] or "imagenet" in errors[0]), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert store(tmp_path).search_runs([e.experiment_id for e in store(tmp_path).search_experiments()]) == []
    assert not list(tmp_path.glob("sweep/*/"))  # no job started
