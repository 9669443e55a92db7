"""The trained network as an MLflow Model: the runs table's Models column, ``mlflow.pyfunc.load_model``,
and the Model Registry.

The run's ``model/`` folder holds the plain Keras file ``model.keras`` (``keras.saving.load_model`` reads
it as before) and beside it the MLflow Model around it: ``MLmodel`` with the signature (images in,
logits out), an input example and the requirements. ``mlflow.pyfunc.load_model("runs:/<id>/model")``
loads it through this module, which registers the project's layers first.

The images are the data set's own values (uint8 0..255 for CIFAR, MNIST and image folders, 0..16 for
digits): the network standardizes them itself (``model/inputs.py``). The signature declares them float32
of shape (-1, height, width, channels), so JSON numbers sent to a served model, whole or not, arrive
exactly (a uint8 signature would truncate 127.6 to 127 without a word), and an image of another shape
gets MLflow's schema error before Keras sees it. From Python, pass float32 arrays (``x.astype("float32")``):
MLflow refuses other dtypes by name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, List, Optional

import numpy as np

KERAS_FILE = "model.keras"
ARTIFACT_PATH = "model"
EXAMPLE_IMAGES = 2  # images in the input example: enough to show the shape, small in the artifact store


class KerasNetwork:
    """What ``mlflow.pyfunc`` loads: the network, predicting logits for a batch of images."""

    def __init__(self, path: str) -> None:
        import keras

        import resnet_lab.model.layers  # noqa: F401 - registers the project's layers with Keras

        self.network = keras.saving.load_model(path, compile=False)

    def predict(self, model_input: Any, params: Optional[dict] = None) -> np.ndarray:
        """Logits for raw images (the data set's own values), which the network standardizes itself."""
        images = np.asarray(model_input, dtype="float32")
        return np.asarray(self.network.predict(images, verbose=0))


def _load_pyfunc(data_path: str) -> KerasNetwork:
    """MLflow's entry point for a ``loader_module``: ``data_path`` is the ``.keras`` file."""
    return KerasNetwork(data_path)


def requirements() -> List[str]:
    """What loading the model needs, pinned to what trained it (given, so MLflow need not guess them)."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    wanted = ["resnet-lab", "keras", "numpy", "mlflow", keras.backend.backend()]
    pinned = []
    for name in wanted:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue  # a backend installed under another name (jax[cuda], torch+cpu): left to the user
    return pinned


def save_mlflow_model(network: Any, example_images: np.ndarray, folder: Path) -> Any:
    """Write the MLflow Model of ``network`` into ``folder`` (new), with ``model.keras`` at its top;
    returns its ``MLmodel`` description."""
    import mlflow.pyfunc
    from mlflow.models import Model, infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        keras_file = Path(tmp) / KERAS_FILE
        network.save(keras_file)
        example = np.asarray(example_images[:EXAMPLE_IMAGES], dtype="float32")  # raw values, as served
        logits = np.asarray(network.predict(example, verbose=0))
        mlflow.pyfunc.save_model(str(folder), loader_module=__name__, data_path=str(keras_file),
                                 signature=infer_signature(example, logits), input_example=example,
                                 pip_requirements=requirements())
    # MLflow copied the file into data/; put it where plain Keras users find it, and point MLmodel there.
    shutil.move(str(folder / "data" / KERAS_FILE), str(folder / KERAS_FILE))
    shutil.rmtree(folder / "data")
    mlmodel = Model.load(str(folder / "MLmodel"))
    mlmodel.flavors["python_function"]["data"] = KERAS_FILE
    mlmodel.save(str(folder / "MLmodel"))
    return mlmodel


def log_mlflow_model(run: Any, network: Any, example_images: np.ndarray, keep_in: Optional[Path] = None) -> None:
    """Log the network as the run's MLflow Model at ``model/`` (and keep ``model.keras`` in ``keep_in``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT_PATH
        mlmodel = save_mlflow_model(network, example_images, folder)
        run.client.log_artifacts(run.run_id, str(folder), ARTIFACT_PATH)
        mlmodel.run_id, mlmodel.artifact_path = run.run_id, ARTIFACT_PATH
        # The tag the runs table's Models column reads; MLflow records it through a private method, so a
        # release without it leaves only that column empty.
        record = getattr(run.client, "_record_logged_model", None)
        if record is not None:
            record(run.run_id, mlmodel)
        if keep_in is not None:
            keep_in.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / KERAS_FILE, keep_in / KERAS_FILE)


def register(client: Any, run_id: str, artifact_uri: str, name: str) -> Any:
    """A new version of registered model ``name`` (created if need be) from the run's MLflow Model."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    return client.create_model_version(name, source=f"{artifact_uri}/{ARTIFACT_PATH}", run_id=run_id)
