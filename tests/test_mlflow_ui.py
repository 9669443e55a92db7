"""End to end in a browser: a real tiny sweep logged through an MLflow server on loopback, then the
experiment opened in headless Chromium. Every run must be listed with its depth and accuracy."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.configs import REPO, TINY
from helpers.processes import run_cli
from helpers.stores import closed_port, seed_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("RESNET_LAB_SCREENSHOTS", REPO / "test-artifacts"))  # kept after the test
SECRET = "pw-SECRET-7"  # in the tracking URI: the server ignores it, the store must never hold it


@pytest.fixture
def mlflow_server(tmp_path, store_template):
    port = closed_port()
    store = tmp_path / "server"
    seed_store(store_template, store)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
         "--artifacts-destination", str(store / "mlartifacts")],
        cwd=store, stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=5).read() == b"OK":
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(1)
        yield url, store
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@pytest.mark.slow
def test_the_mlflow_ui_lists_every_run_of_a_sweep_with_depth_and_accuracy(tmp_path, mlflow_server):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run does it)")
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
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
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
        browser.close()
    assert dict(zip(table["Run Name"], table["arch.depth"])) == depths  # every job, with its depth
    assert all(accuracy in text for accuracy in accuracies), accuracies

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in sorted(shots.glob("*.png")):
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, SCREENSHOTS / f"mlflow_ui_{shot.name}")
        print(f"screenshot: {SCREENSHOTS / f'mlflow_ui_{shot.name}'}")
