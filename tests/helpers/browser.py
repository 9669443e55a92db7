"""A served MLflow UI and headless Chromium looking at it, as a person would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from helpers.configs import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("RESNET_LAB_SCREENSHOTS", REPO / "test-artifacts"))  # kept after the test

# Every cell of every row the runs table has drawn, by the row's index and the cell's column id.
TABLE_CELLS_JS = """() => {
  const rows = {};
  for (const row of document.querySelectorAll('.ag-row')) {
    const index = row.getAttribute('row-index');
    rows[index] = rows[index] || {};
    for (const cell of row.querySelectorAll('[col-id]')) rows[index][cell.getAttribute('col-id')] = cell.innerText.trim();
  }
  return Object.values(rows);
}"""


@contextlib.contextmanager
def serving(command: List[str], cwd: Path, url: str, log: Path, timeout: float = 240,
            env: Optional[Dict[str, str]] = None, health: str = "/health") -> Iterator[None]:
    """Start a server (MLflow's UI or tracking server, or a model's scoring server: ``health="/ping"``), wait
    until ``health`` answers 200, and stop it and its children afterwards."""
    server = subprocess.Popen(command, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                              start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}{health}", timeout=5).status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-5000:]
            time.sleep(1)
        yield
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@contextlib.contextmanager
def chromium_page(width: int = 2400, height: int = 1100) -> Iterator[object]:
    """A fresh headless Chromium page (no stored UI state), driven through Playwright."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run does it)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def table_rows(page: object) -> List[Dict[str, str]]:
    """The runs table as drawn: one dict per row, column id -> the cell's text."""
    return page.evaluate(TABLE_CELLS_JS)


def keep_screenshot(page: object, name: str) -> Path:
    """Save what the page shows under test-artifacts/ (or $RESNET_LAB_SCREENSHOTS), kept after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path
