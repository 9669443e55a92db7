"""resnet-lab-bench: bench(cfg) in-process and the real command, against a real MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.configs import TINY, TINY_DEPTH, compose_config
from helpers.processes import AS_A_USER, noise_in, run_cli
from helpers.stores import seed_store
from mlflow.tracking import MlflowClient

from resnet_lab.bench import bench, render
from resnet_lab.errors import ConfigError

# No autotune probe (a worker process's start-up, seconds) but where a test asks for one.
TINY_BENCH = [*TINY, "model=cifar_resnet20", "trainer.batch_size=16", "bench.steps=3", "bench.warmup_steps=1",
              "trainer.autotune=false"]
REQUIRED = {"train_images_per_s", "eval_images_per_s", "step_ms_median", "first_step_s"}


@pytest.fixture(scope="module")
def benched(tmp_path_factory, store_template):
    """One bench run read by the three tests below: every setting auto allows timed (a real probe), both
    baselines, two repeats, logged to a store of its own. Each bench run builds, traces and compiles its
    models afresh: one run instead of three saves the most expensive part of this module."""
    tmp_store = seed_store(store_template, tmp_path_factory.mktemp("bench"))
    cfg = compose_config("bench", [*TINY_BENCH, f"tracking.uri={tmp_store}", "tracking.experiment=tests",
                                   "trainer.jit_compile=null", "trainer.precision=fp32", "trainer.autotune=true",
                                   "bench.baselines=[raw_fit,other_xla]", "bench.repeats=2"])
    return tmp_store, bench(cfg)


@pytest.mark.slow  # the bench with a real probe and both baselines: minutes; the command test stays
@pytest.mark.xdist_group("benched")  # one worker: the bench runs once
def test_bench_measures_the_model_and_a_raw_fit_baseline_and_logs_them(benched):
    tmp_store, results = benched

    for key in REQUIRED | {"raw_fit_train_images_per_s"}:
        assert results[key] > 0, key
    assert results["first_step_s"] > results["step_ms_median"] / 1000  # tracing is in the first step only
    assert results["host_peak_mb"] > 50 and results["start_to_first_step_s"] > 0
    # overhead_vs_raw_fit is derived from the two speeds, not measured apart
    assert results["overhead_vs_raw_fit"] == pytest.approx(
        1 - results["train_images_per_s"] / results["raw_fit_train_images_per_s"])
    assert results["image_shape"] == [8, 8, 3] and results["batch_size"] == 16

    client = MlflowClient(tmp_store)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_id == results["mlflow_run_id"]
    assert run.data.tags["resnet_lab.role"] == "bench" and run.data.tags["precision"] == results["precision"]
    assert run.data.tags["keras_backend"] == results["backend"] and run.data.tags["depth"] == str(TINY_DEPTH)
    assert run.data.metrics["train_images_per_s"] == pytest.approx(results["train_images_per_s"])
    assert run.data.metrics["overhead_vs_raw_fit"] == pytest.approx(results["overhead_vs_raw_fit"])
    assert run.data.params["bench.steps"] == "3"
    assert "raw model.fit" in render(results, "text") and json.loads(render(results, "json")) == results


@pytest.mark.slow
@pytest.mark.xdist_group("benched")
def test_bench_times_every_setting_auto_allows_and_prints_the_candidate_table(benched):
    tmp_store, results = benched

    rows = {(c["precision"], c["jit_compile"]): c for c in results["candidates"]}
    assert set(rows) == {("fp32", False), ("fp32", True)} and all(c["images_per_s"] > 0 for c in rows.values())
    assert results["autotune"] == "probed" and "fastest of 2 candidates" in results["autotune_reason"]
    fastest = max(rows.values(), key=lambda c: c["images_per_s"])
    chosen = rows[("fp32", results["jit_compile"])]
    assert chosen["images_per_s"] >= fastest["images_per_s"] / 1.03  # the fastest, or the static within 3%
    text = render(results, "text")
    assert "precision and XLA (probed: fastest of 2 candidates" in text
    assert f"fp32       XLA {'on ' if results['jit_compile'] else 'off'} " in text and "<- default" in text
    assert len([line for line in text.splitlines() if "images/s   set-up" in line]) == 2

    client = MlflowClient(tmp_store)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.data.tags["autotune"] == "probed" and "fp32/xla_on" in run.data.tags["autotune.candidates"]
    logged = run.data.metrics["autotune.fp32.xla_on_images_per_s"]
    assert logged == pytest.approx(rows[("fp32", True)]["images_per_s"], rel=1e-3)


@pytest.mark.slow
@pytest.mark.xdist_group("benched")
def test_the_other_xla_baseline_reports_what_xla_gives_this_model(benched):
    _, results = benched

    with_xla, without = results["train_images_per_s"], results["other_xla_train_images_per_s"]
    if not results["jit_compile"]:  # the baseline has XLA the other way from the setting the probe chose
        with_xla, without = without, with_xla
    assert results["xla_speedup"] == pytest.approx(with_xla / without)
    assert results["other_xla_first_step_s"] > 0
    assert "XLA trains" in render(results, "text")


def test_the_command_prints_one_json_line_and_logs_to_the_bench_experiment(tmp_path, tmp_store):
    result = run_cli("resnet-lab-bench", [*TINY_BENCH, "bench.format=json"], tmp_path, env=AS_A_USER)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not noise_in(result.stdout, result.stderr), result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    results = json.loads(lines[0])
    assert REQUIRED <= set(results) and all(results[k] > 0 for k in REQUIRED)
    assert 0 < results["start_to_first_step_s"] < 600
    client = MlflowClient(tmp_store)
    (run,) = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    assert run.info.status == "FINISHED"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # no Hydra output folders


def test_a_seed_baseline_for_another_network_is_refused_before_any_run(tmp_path):
    cfg = compose_config("bench", [*TINY_BENCH, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
                                   "bench.baselines=[seed]"])
    with pytest.raises(ConfigError, match=r"bench\.baselines=\['seed'\] is not allowed: 'seed' only with the "
                                          r"seed's network .* model=cifar_resnet20 has"):
        bench(cfg)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("override, message", [
    ("bench.steps=0", r"bench\.steps=0 is not allowed: a positive integer"),
    ("bench.format=xml", r"bench\.format='xml' is not allowed: one of 'text', 'json'"),
    ("bench.baselines=[seed,torch]", r"bench\.baselines=\['seed', 'torch'\] is not allowed: a list drawn from "
                                     r"'seed', 'raw_fit'"),
    ("trainer.precision=fp8", r"trainer\.precision='fp8' is not allowed: one of .*'auto'"),
])
def test_bench_config_mistakes_name_the_key(tmp_path, override, message):
    cfg = compose_config("bench", [*TINY, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", override])
    with pytest.raises(ConfigError, match=message):
        bench(cfg)
    assert not (tmp_path / "mlflow.db").exists()


def test_starting_the_cli_imports_no_framework():
    code = ("import sys, resnet_lab.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'jax', 'mlflow', 'sklearn', 'numpy'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_seed_baseline_runs_beside_the_seed_preset(tmp_path):
    cfg = compose_config("bench", ["model=seed_resnet18", "data.image_shape=[8,8,3]", "data.train_size=32",
                                   "trainer.batch_size=8", "bench.steps=2", "bench.warmup_steps=1",
                                   "bench.baselines=[seed,raw_fit]", "tracking.enabled=false"])
    results = bench(cfg)
    assert results["seed_train_images_per_s"] > 0 and results["speedup_vs_seed"] == pytest.approx(
        results["train_images_per_s"] / results["seed_train_images_per_s"])
