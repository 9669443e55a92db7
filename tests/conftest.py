"""Fixtures shared by every test module: quiet backends, MLflow stores in tmp_path, tiny training runs.

Helpers that tests import (composing configs, running commands, reading stores, fabricating data)
live in ``tests/helpers/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# Autotune decisions go to a cache of this test session (every command it runs inherits it), never to
# the developer's own: a test must not read a probe from earlier, nor leave one behind.
os.environ["RESNET_LAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="resnet-lab-test-cache-")

import pytest
from helpers.configs import TINY
from helpers.stores import migrated_database, seed_store


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Make ``--dist loadgroup`` keep each ``xdist_group`` on one worker under pytest 9.

    pytest-xdist (3.8) groups by renaming ``item._nodeid`` to ``<nodeid>@<group>``; pytest 9 reads a
    node's id from ``item._id`` instead, so the rename is lost and every grouped test is scheduled on
    its own: the expensive session and module fixtures that a group shares were built on each worker.
    Here the same suffix is put where pytest 9 reads it (and left alone where xdist already added it).
    """
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers with --dist loadgroup
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest < 9: xdist's own rename works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)


class _PresetReports(dict):
    """Spec and report of each preset at full depth, built the first time a test asks for it."""

    def __missing__(self, name: str):
        from resnet_lab.zoo import preset_report

        self[name] = preset_report(name)
        return self[name]


@pytest.fixture(scope="session")
def preset_reports() -> _PresetReports:
    """Building a deep preset takes seconds: the reference checks and the catalogue share one build each."""
    return _PresetReports()


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    """One migrated MLflow database per test session; each test's store starts as a copy of it."""
    return migrated_database(tmp_path_factory.mktemp("store-template"))


@pytest.fixture
def tmp_store(tmp_path, store_template) -> str:
    """A ready MLflow store at ``tmp_path/mlflow.db``, where the commands launched in tmp_path look by default."""
    return seed_store(store_template, tmp_path)


@pytest.fixture
def tiny_train_overrides(tmp_store) -> List[str]:
    """A run of seconds logging to this test's store, in the experiment ``tests``."""
    return [*TINY, "trainer.verbose=0", f"tracking.uri={tmp_store}", "tracking.experiment=tests"]


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node Slurm cluster started by scripts/slurm-local.sh, for the session (tests/helpers/cluster.py)."""
    from helpers.cluster import slurm_cluster

    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def team_server(tmp_path_factory):
    """The PostgreSQL-backed MLflow server with basic auth of scripts/tracking-server.sh, for the session."""
    from helpers.cluster import tracking_server

    with tracking_server(tmp_path_factory.mktemp("tracking")) as server:
        yield server
