"""The data a run used, as MLflow datasets: the runs table's Dataset column and each run's dataset panel.

Each split is one dataset input (its context: train, validation or test) named after the data set, with
where it came from, a digest of the arrays actually used, their shapes and the classes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

# Where a data set comes from when no file is named: its loader.
LOADERS = {
    "digits": "sklearn.datasets.load_digits",
    "synthetic": "resnet_lab.data.synthetic",
}
SPLITS = (("train", "x_train", "y_train"), ("validation", "x_val", "y_val"), ("test", "x_test", "y_test"))


def digest(x: np.ndarray, y: np.ndarray) -> str:
    """A short hash of the images and labels themselves: the same arrays, the same digest."""
    h = hashlib.sha256()
    for array in (x, y):
        h.update(str((array.dtype.str, array.shape)).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:12]


def source_of(data: Any) -> Dict[str, Any]:
    """The dataset's source as MLflow records it: a file or folder, or the code that makes the arrays."""
    if data.path:
        return {"type": "local", "source": {"uri": str(Path(str(data.path)).expanduser().resolve())}}
    loader = LOADERS.get(data.name, f"the Keras cache ({data.name})")
    return {"type": "code", "source": {"tags": {"loader": loader, "split_seed": str(data.split_seed)}}}


def dataset_inputs(splits: Any, data: Any) -> List[Any]:
    """One ``DatasetInput`` per split, with the split as its context."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    source = source_of(data)
    inputs = []
    for context, x_key, y_key in SPLITS:
        x, y = getattr(splits, x_key), getattr(splits, y_key)
        schema = {"mlflow_tensorspec": {"features": _tensor_spec(x), "targets": _tensor_spec(y)}}
        profile = {"images": int(x.shape[0]), "image_shape": [int(d) for d in x.shape[1:]],
                   "classes": int(splits.num_classes), "class_names": list(splits.class_names or [])}
        dataset = Dataset(name=data.name, digest=digest(x, y), source_type=source["type"],
                          source=json.dumps(source["source"]), schema=json.dumps(schema), profile=json.dumps(profile))
        inputs.append(DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def _tensor_spec(array: np.ndarray) -> str:
    """MLflow's tensor schema of a batch of arrays: any number of them, each of the array's item shape."""
    return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype),
                                                           "shape": [-1, *array.shape[1:]]}}])


def log_datasets(run: Any, splits: Any, data: Any) -> None:
    run.client.log_inputs(run.run_id, datasets=dataset_inputs(splits, data))
