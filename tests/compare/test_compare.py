"""resnet-lab-compare over a real SQLite store: filters, sorting, every format, the plots.

The tables here have one row per run (``compare.group=none``); grouped repeats are in test_compare_stats.py.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import List

import pytest
from helpers.configs import compose_config
from helpers.processes import run_cli

from resnet_lab import tracking
from resnet_lab.errors import UserError

RUNS = [  # name, depth, params, flops, test_accuracy, train_seconds, in the sweep
    ("resnet18", 18, 11_689_512, 3_600_000_000, 0.71, 100.0, True),
    ("resnet34", 34, 21_797_672, 7_300_000_000, 0.74, 180.0, True),
    ("resnet50", 50, 25_557_032, 8_200_000_000, 0.76, 260.0, True),
    ("resnet101", 101, 44_549_160, 15_600_000_000, 0.78, 470.0, False),
]


def run_compare(args: List[str], cwd: Path):
    return run_cli("resnet-lab-compare", args, cwd)


@pytest.fixture
def filled_store(tmp_path, tmp_store):
    """A store with one sweep of three runs and one run outside it, as training logs them."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    uri = tmp_store
    client = tracking.client_for(uri)
    experiment = tracking.experiment_id(client, "depth", uri)
    parent = client.create_run(experiment, run_name="sweep", tags={tracking.TAG_ROLE: "sweep"}).info.run_id
    client.set_terminated(parent, "FINISHED")
    for name, depth, params, flops, accuracy, seconds, in_sweep in RUNS:
        tags = {tracking.TAG_ROLE: "train", "preset": name, "depth": str(depth)}
        if in_sweep:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        run = tracking.Run(client, client.create_run(experiment, run_name=name, tags=tags).info.run_id)
        run.log_params({"arch.depth": depth, "arch.params_total": params, "arch.flops": flops})
        run.log_metrics({"test_accuracy": accuracy, "best_val_accuracy": accuracy + 0.01, "train_seconds": seconds,
                         "train_images_per_s": 50000 / seconds}, step=1)
        client.set_terminated(run.run_id, "FINISHED")
    return tmp_path, parent


def test_text_table_sorted_by_depth_with_every_column(filled_store):
    tmp_path, _ = filled_store
    result = run_compare(["tracking.experiment=depth", "compare.group=none"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["run", "status", "preset", "depth", "params", "flops", "test_accuracy",
                                "best_val_accuracy", "train_seconds", "images_per_s"]
    assert [line.split()[0] for line in lines[1:]] == ["resnet18", "resnet34", "resnet50", "resnet101"]
    assert lines[1].split()[3:8] == ["18", "11.7M", "3.6G", "0.7100", "0.7200"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # nothing written


def compare_here(tmp_path: Path, monkeypatch, overrides: List[str]) -> str:
    """What ``resnet-lab-compare`` prints, called in this process (the command is tested above and below)."""
    from resnet_lab.compare.comparison import comparison

    monkeypatch.chdir(tmp_path)  # the default store, and relative plot folders, are where the command runs
    return comparison(compose_config("compare", ["tracking.experiment=depth", "compare.group=none", *overrides])).text


def test_a_sweeps_runs_sorted_by_accuracy_as_markdown(filled_store, monkeypatch):
    tmp_path, parent = filled_store
    by_id = compare_here(tmp_path, monkeypatch, [f"compare.parent={parent}", "compare.sort=test_accuracy",
                                                 "compare.descending=true", "compare.format=markdown"])
    lines = by_id.splitlines()
    assert lines[0].startswith("| run | status | preset | depth |") and lines[1].startswith("|---|")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["resnet50", "resnet34", "resnet18"]
    latest = compare_here(tmp_path, monkeypatch, ["compare.parent=latest", "compare.format=markdown",
                                                  "compare.sort=test_accuracy", "compare.descending=true"])
    assert latest == by_id


def test_csv_and_json_carry_raw_numbers_and_tag_filters_apply(filled_store, monkeypatch):
    tmp_path, _ = filled_store
    rows = list(csv.DictReader(io.StringIO(compare_here(tmp_path, monkeypatch, [
        "compare.format=csv", "compare.metrics=[test_accuracy]"]))))
    assert [r["run"] for r in rows] == ["resnet18", "resnet34", "resnet50", "resnet101"]
    assert rows[3]["params"] == "44549160" and rows[3]["test_accuracy"] == "0.78"
    assert "best_val_accuracy" not in rows[0]
    (row,) = json.loads(compare_here(tmp_path, monkeypatch, ["compare.format=json", "+compare.tags.preset=resnet34"]))
    assert row["run"] == "resnet34" and row["depth"] == 34 and row["flops"] == 7_300_000_000


def test_plots_are_written_as_png(filled_store, monkeypatch):
    tmp_path, _ = filled_store
    compare_here(tmp_path, monkeypatch, ["compare.plot_dir=plots"])
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["accuracy_vs_depth.png", "accuracy_vs_params.png", "accuracy_vs_train_time.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000 for p in pngs)


def test_a_mistake_is_one_line_and_exit_2(filled_store):
    """What the command makes of a mistake; the mistakes themselves are checked in this process below."""
    tmp_path, _ = filled_store
    result = run_compare(["tracking.experiment=depth", "compare.parent=0123abcd"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: no training runs in experiment 'depth'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("override, message", [
    ("compare.format=html", "compare.format='html' is not allowed: one of 'text', 'markdown', 'csv', 'json'"),
    ("compare.sort=speed", "compare.sort='speed' is not allowed: a column: run, status, preset, depth"),
    ("compare.experiment=nope", "compare.experiment='nope' is not allowed: an experiment of the store: "),
    ("compare.status=DONE", "compare.status='DONE' is not allowed: null or one of 'FINISHED'"),
    ("compare.parent=0123abcd", "no training runs in experiment 'depth'"),
])
def test_mistakes_are_user_errors_the_command_prints_in_one_line(filled_store, monkeypatch, override, message):
    """A UserError is what the command turns into one line and exit code 2 (the test above, and test_cli.py)."""
    from resnet_lab.compare.comparison import comparison  # what the command calls

    tmp_path, _ = filled_store
    monkeypatch.chdir(tmp_path)  # where the command runs: its default store
    with pytest.raises(UserError) as raised:
        comparison(compose_config("compare", ["tracking.experiment=depth", override]))
    assert str(raised.value).startswith(message)


def test_latest_without_an_experiment_finds_the_newest_sweep_and_says_where_to_look(filled_store):
    """After `+experiment=digits_depth` the sweep is in another experiment than the default one."""
    tmp_path, parent = filled_store
    result = run_compare(["compare.parent=latest", "compare.group=none"], tmp_path)  # tracking.experiment unset
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.strip().splitlines()[1:]]
    assert names == ["resnet18", "resnet34", "resnet50"]  # the sweep's jobs, not the run outside it
    assert "experiment 'resnet-lab' has no sweep: comparing the newest sweep, sweep in experiment 'depth'" in \
        result.stderr
    ui = [line for line in result.stderr.splitlines() if line.startswith("MLflow UI: ")]
    assert len(ui) == 1 and "/#/experiments/" in ui[0] and "viewStateShareKey=resnet-lab-comparison" in ui[0]


def test_a_sweep_without_a_single_run_still_gets_its_comparison_with_the_headers(tmp_store):
    from resnet_lab.compare.comparison import log_to_run
    from resnet_lab.compare.render import summary_table
    from resnet_lab.sweeps.parent import COMPARE_METRICS

    with tracking.start_run(tmp_store, "tests", "empty-sweep") as parent:
        pass
    client = tracking.client_for(tmp_store)
    log_to_run(client, parent.run_id, [], COMPARE_METRICS, "test_accuracy")  # every job failed before its run
    assert client.download_artifacts(parent.run_id, "comparison_runs.csv")
    assert summary_table([], "test_accuracy").split() == ["run", "preset", "depth", "params", "n", "test_accuracy"]
