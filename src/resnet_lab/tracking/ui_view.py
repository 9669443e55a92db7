"""What a user sees first in the MLflow UI: the experiment as model training, and a saved comparison view.

MLflow's UI opens an experiment on its GenAI pages unless the URL says ``workflowType=machine_learning``
(the experiment tag ``mlflow.experimentKind`` is set too, but the UI's mode switch decides). A view is
shared through the experiment tag ``mlflow.sharedViewState.<key>``, loaded by the URL parameter
``viewStateShareKey=<key>``: its JSON is the runs page's UI state, in the shape MLflow 3.17's UI writes
(checked by ``tests/test_mlflow_ui.py`` in headless Chromium; the MLflow versions it holds for are
pinned in ``pyproject.toml``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
VIEW_KEY = "resnet-lab-comparison"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default

# The runs table's columns, in order: depth and the accuracy it buys first (on screen at a laptop's 1440
# pixels beside the UI's assistant panel), then size and cost, then the UI's own Dataset and Models.
COLUMNS = (("params", "arch.depth"), ("metrics", "test_accuracy"), ("tags", "preset"), ("params", "arch.params_total"),
           ("params", "arch.flops"), ("metrics", "best_val_accuracy"), ("metrics", "train_seconds"),
           ("attributes", "Dataset"), ("attributes", "Models"))


def _column(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"  # the UI's key for a column: attributes.`Dataset`, params.`arch.depth`, ...


def view_state(group_tag: str) -> Dict[str, Any]:
    """The comparison view: depth, size, cost and accuracy as columns; accuracy against depth and against
    parameters as charts; repeats of one configuration (runs sharing ``group_tag``) grouped, with their mean."""
    columns = [_column(kind, name) for kind, name in COLUMNS]
    section = "resnet-lab-depth"
    charts = [_scatter("resnet-lab-accuracy-vs-depth", section, "arch.depth"),
              _scatter("resnet-lab-accuracy-vs-params", section, "arch.params_total")]
    return {
        "orderByKey": "attributes.start_time",
        "orderByAsc": True,  # sweeps train in the order they list depths
        "selectedColumns": columns,
        # The comparison first, the run's dataset and model after it; the UI applies a width (room for names
        # like cifar_resnet56-ep30-seed2) only to a column that the order lists.
        "columnOrder": [_column("attributes", "Run Name"), *columns],
        "columnWidths": {_column("attributes", "Run Name"): 330},
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": group_tag}]},
        "useGroupedValuesInCharts": True,
        "compareRunSections": [{"uuid": section, "name": "Accuracy against depth and size", "display": True,
                                "isReordered": False, "deleted": False, "isGenerated": False}],
        "compareRunCharts": charts,
        "hideEmptyCharts": True,
        "runsHiddenMode": "SHOW_ALL",
    }


def _scatter(uuid: str, section: str, x_param: str) -> Dict[str, Any]:
    return {"uuid": uuid, "type": "SCATTER", "runsCountToCompare": 100, "metricSectionId": section,
            "deleted": False, "isGenerated": False, "displayName": f"test_accuracy vs {x_param}",
            "xaxis": {"key": x_param, "type": "PARAM"}, "yaxis": {"key": "test_accuracy", "type": "METRIC"}}


def mark_for_model_training(client: Any, experiment_id: str, group_tag: str) -> None:
    """Tag an experiment as model training and give it the comparison view (both idempotent)."""
    experiment = client.get_experiment(experiment_id)
    tags = experiment.tags or {}
    if tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    state = json.dumps(view_state(group_tag), separators=(",", ":"))
    if tags.get(VIEW_TAG) != state:
        client.set_experiment_tag(experiment_id, VIEW_TAG, state)


def ui_base(uri: str) -> str:
    """The UI that shows this store: the tracking server itself, or `mlflow ui` on this machine."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"  # never the credentials
    return LOCAL_UI


def view_url(uri: str, experiment_id: str, run_id: Optional[str] = None) -> str:
    """The comparison view of an experiment (or one run's page) in model-training mode."""
    base = ui_base(uri)
    if run_id is not None:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"


def ui_command(uri: str) -> Optional[str]:
    """The command that serves a local store's UI at ``LOCAL_UI``; None for a tracking server."""
    if not uri.startswith("sqlite:///"):
        return None
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def pointer_lines(uri: str, experiment_id: str, run_id: Optional[str] = None) -> List[str]:
    """Where to look: the view's URL, and the command that serves it when nothing serves it yet."""
    lines = [f"MLflow UI: {view_url(uri, experiment_id)}"]
    if run_id is not None:
        lines.append(f"this run: {view_url(uri, experiment_id, run_id)}")
    command = ui_command(uri)
    if command is not None:
        lines.append(f"serve it with: {command}")
    return lines
