"""End to end in a browser: real tiny sweeps, served by MLflow on loopback and opened in headless Chromium.

A user runs a depth sweep, then opens the URL the sweep printed: the comparison must be on screen with no
click (every run's depth and accuracy, its dataset and model, the repeats grouped), in model-training
mode rather than on the GenAI pages. This is also the test that fails when a new MLflow UI no longer
reads the saved view (pyproject.toml pins the versions it passed with).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics

import pytest
from helpers.browser import SCREENSHOTS, chromium_page, keep_screenshot, serving, table_rows
from helpers.configs import TINY
from helpers.processes import BIN, run_cli
from helpers.stores import closed_port, seed_store, sweep_runs

SECRET = "pw-SECRET-7"  # in the tracking URI: the server ignores it, the store must never hold it
NAME, DEPTH, ACCURACY = "attributes.`Run Name`", "params.`arch.depth`", "metrics.`test_accuracy`"
DATASET, MODELS = "attributes.`Dataset`", "attributes.`Models`"


@pytest.fixture
def mlflow_server(tmp_path, store_template):
    port = closed_port()
    store = tmp_path / "server"
    seed_store(store_template, store)
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination",
               str(store / "mlartifacts")]
    with serving(command, store, url, tmp_path / "server.log"):
        yield url, store


@pytest.mark.slow
@pytest.mark.browser
def test_a_depth_sweep_opens_in_the_mlflow_ui_on_its_comparison(tmp_path, tmp_store):
    # Two depths, two seeds each: what a user runs, shrunk.
    result = run_cli("resnet-lab-train", ["-m", *TINY, "trainer.epochs=1", "model.layer_dims=[1,1,1],[2,2,2]",
                                          "seed=1,2", "hydra.sweep.dir=sweep", "tracking.experiment=depth-ui"],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (parent,), children = sweep_runs(tmp_path, "depth-ui")
    assert len(children) == 4

    # The sweep said where to look and how to serve it: use exactly that, on a free port.
    printed_url = re.search(r"^MLflow UI: (\S+)$", result.stdout, re.M).group(1)
    command = re.search(r"^serve it with: (.+)$", result.stdout, re.M).group(1).split()
    assert command[:3] == ["mlflow", "ui", "--backend-store-uri"] and printed_url.startswith("http://127.0.0.1:5000/")
    port = closed_port()
    command = [str(BIN / "mlflow"), *command[1:-1], str(port)]  # the printed command ends with --port 5000
    url = printed_url.replace(":5000/", f":{port}/")
    with serving(command, tmp_path, f"http://127.0.0.1:{port}", tmp_path / "ui.log"), chromium_page() as page:
        page.goto(url)
        page.locator(f"[col-id='{ACCURACY}']").nth(len(children)).wait_for(timeout=120_000)
        page.wait_for_timeout(1000)  # the last rows settle
        rows = table_rows(page)
        nav = page.inner_text("nav") if page.locator("nav").count() else page.inner_text("body")
        keep_screenshot(page, "mlflow_ui_comparison.png")
        page.get_by_label("Close").first.click()  # the assistant panel, for a clean picture of the charts
        page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()  # the view's charts
        page.get_by_text("arch.depth vs. test_accuracy").first.wait_for(timeout=60_000)
        keep_screenshot(page, "mlflow_ui_charts.png")

        # On a laptop's screen, beside the assistant panel, depth and test accuracy are the first columns.
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(url)
        accuracy_header = page.locator(f".ag-header-cell[col-id='{ACCURACY}']").first
        accuracy_header.wait_for(timeout=120_000)
        page.locator(f"[col-id='{ACCURACY}']").nth(len(children)).wait_for(timeout=120_000)
        box = accuracy_header.bounding_box()
        keep_screenshot(page, "mlflow_ui_laptop.png")

        # The sweep's parent run opens on its verdict: its description, as a person reads it.
        page.set_viewport_size({"width": 2400, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}")
        verdict = parent.data.tags["mlflow.note.content"].splitlines()[0].strip("*")
        page.get_by_text(verdict).first.wait_for(timeout=60_000)
        parent_page = page.inner_text("body")
        keep_screenshot(page, "mlflow_ui_parent_verdict.png")

        # The experiment's Models page: every run's LoggedModel, its validation metric, the champion registered.
        page.goto(f"http://127.0.0.1:{port}/#/experiments/{parent.info.experiment_id}/models"
                  "?workflowType=machine_learning")
        page.locator(".ag-row").nth(len(children) - 1).wait_for(timeout=120_000)
        for child in children:  # the page shows a run's id until it has fetched the run's name
            page.get_by_text(child.info.run_name, exact=True).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        models = [row for row in table_rows(page) if "source_run_id" in row]  # not the runs table's rows
        keep_screenshot(page, "mlflow_ui_models.png")

    assert box is not None and box["x"] + box["width"] <= 1440 * 0.75  # left of the panel's quarter
    assert verdict.startswith("test_accuracy on this test set: ") and verdict in parent_page
    assert f"{children[0].data.tags['resnet_lab.group']} vs " in parent_page or "pairs resolved" in verdict

    by_name = {row.get(NAME): row for row in rows}
    for child in children:  # every run, its depth and test accuracy, its dataset and model: no click needed
        row = by_name[child.info.run_name]
        assert row[DEPTH] == child.data.params["arch.depth"]
        assert float(row[ACCURACY]) == pytest.approx(child.data.metrics["test_accuracy"])
        assert "synthetic (" in row[DATASET] and "Train" in row[DATASET]
        # The run's LoggedModel by name; MLflow 3.18 shows the champion's registered version instead.
        assert row[MODELS].split() in (["model"], ["depth-ui-debug", "v1"])
    val_accuracy = {child.info.run_name: child.data.metrics["best_val_accuracy"] for child in children}
    assert sorted(row["source_run_id"] for row in models) == sorted(val_accuracy)
    for row in models:
        assert row["status"] == "Ready" and row["name"].endswith("model")
        (metric,) = [value for column, value in row.items() if "best_val_accuracy" in column]
        assert float(metric) == pytest.approx(val_accuracy[row["source_run_id"]], abs=1e-4)
    (champion,) = [row for row in models if row["registered_models"] != "-"]
    assert champion["registered_models"].split() == ["depth-ui-debug", "v1"]  # a tiny sweep's own name
    group_of = {child.info.run_name: child.data.tags["resnet_lab.group"] for child in children}
    means = {g: statistics.fmean(v for n, v in val_accuracy.items() if group_of[n] == g) for g in group_of.values()}
    winner = champion["source_run_id"]  # by validation: the best group's best run
    assert means[group_of[winner]] == max(means.values())
    assert val_accuracy[winner] == max(v for n, v in val_accuracy.items() if group_of[n] == group_of[winner])
    assert "champion: version 1 of 'depth-ui-debug'" in result.stdout

    groups = [row for row in rows if "Group:" in (row.get(NAME) or "")]
    assert len(groups) == 2 and all("(average)" in g[ACCURACY] for g in groups)  # the repeats, and their mean
    assert "Overview" not in nav and "Runs" in nav  # model training, not the GenAI overview


@pytest.mark.slow
@pytest.mark.browser
def test_the_experiment_is_marked_for_model_training_and_holds_the_view(tmp_path, tmp_store):
    """The UI reads these two experiment tags: the experiment kind and the shared view."""
    from mlflow.tracking import MlflowClient

    result = run_cli("resnet-lab-train", [*TINY, "trainer.epochs=1", "tracking.experiment=kind"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    experiment = MlflowClient(tmp_store).get_experiment_by_name("kind")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.resnet-lab-comparison"])
    assert {"params.`arch.depth`", "metrics.`test_accuracy`", "attributes.`Models`"} <= set(view["selectedColumns"])
    lines = [line for line in result.stderr.splitlines() if "MLflow UI: " in line or "this run: " in line]
    assert len(lines) == 2 and f"#/experiments/{experiment.experiment_id}/runs" in lines[0]


@pytest.mark.slow
@pytest.mark.browser
def test_the_mlflow_ui_lists_every_run_of_a_sweep_with_depth_and_accuracy(tmp_path, mlflow_server):
    url, store = mlflow_server
    uri = url.replace("http://", f"http://alice:{SECRET}@")
    result = run_cli("resnet-lab-train", ["-m", *TINY, "trainer.epochs=1", "model.layer_dims=[1,1,1],[2,2,2]",
                                          "hydra.sweep.dir=sweep",
                                          f"tracking.uri={uri}", "tracking.experiment=ui"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("ui").experiment_id
    runs = client.search_runs([experiment])
    children = [r for r in runs if r.data.tags.get("resnet_lab.role") == "train"]
    assert len(children) == 2 and len(runs) == 3
    depths = {c.info.run_name: c.data.params["arch.depth"] for c in children}
    accuracies = [f"{c.data.metrics['test_accuracy']:.3f}".rstrip("0") for c in children]  # as the UI rounds
    # The password in the URI reached neither the server's database nor any artifact.
    leaks = [p for p in store.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks

    shots = tmp_path / "screenshots"
    parent = next(r for r in runs if r.data.tags.get("resnet_lab.role") == "sweep")
    shots.mkdir()
    with chromium_page(1600, 1000) as page:
        # The experiment's training runs: the sweep's parent, expanded to show its jobs.
        page.goto(f"{url}/#/experiments/{experiment}/runs")
        name_cell = page.get_by_text(parent.info.run_name, exact=True).first
        name_cell.wait_for(timeout=120_000)
        row = name_cell.locator("xpath=ancestor::div[@role='row'][1]")
        row.locator("button[data-component-id*='runnamecellrenderer']").click()  # expand the child runs
        for child in children:
            page.locator(f"text={child.info.run_name}").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "experiment.png"))

        # Compare the jobs: depth per run, the accuracy metrics, the parallel-coordinates chart.
        ids = [c.info.run_id for c in children]
        page.goto(f"{url}/#/compare-runs?runs={json.dumps(ids)}&experiments={json.dumps([experiment])}")
        page.get_by_text("arch.depth", exact=True).first.wait_for(timeout=120_000)
        page.get_by_text("test_accuracy", exact=True).first.wait_for(timeout=60_000)
        table = {}
        for tr in page.locator("tr").all():
            cells = [c.strip() for c in tr.locator("th, td").all_inner_texts()]
            if cells and cells[0].rstrip(":") in ("Run Name", "arch.depth"):
                table[cells[0].rstrip(":")] = cells[1:]
        text = page.inner_text("body")
        page.screenshot(path=str(shots / "compare.png"), full_page=True)
    assert dict(zip(table["Run Name"], table["arch.depth"])) == depths  # every job, with its depth
    assert all(accuracy in text for accuracy in accuracies), accuracies

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in sorted(shots.glob("*.png")):
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, SCREENSHOTS / f"mlflow_ui_{shot.name}")
        print(f"screenshot: {SCREENSHOTS / f'mlflow_ui_{shot.name}'}")
