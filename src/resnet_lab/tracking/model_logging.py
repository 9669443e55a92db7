"""The trained network as an MLflow 3 LoggedModel: the experiment's Models page, ``mlflow.pyfunc.load_model``,
``search_logged_models`` and the Model Registry.

Each run's network is a LoggedModel named ``model``, linked to its run as an output and holding the run's
final metrics. Its artifacts are the plain Keras file ``model.keras`` at the top (``keras.saving.load_model``
reads it as before) and the MLflow Model around it: ``MLmodel`` with the signature (images in, logits out),
an input example, the requirements, and the project's own code under ``code/`` so that the model loads
where resnet-lab is not installed (``mlflow models serve`` builds its environment from PyPI, where the
project is not published). ``mlflow.pyfunc.load_model("runs:/<id>/model")`` or ``"models:/<model_id>"``
loads it through this module, which registers the project's layers first.

The images are the data set's own values (uint8 0..255 for CIFAR, MNIST and image folders, 0..16 for
digits): the network standardizes them itself (``model/inputs.py``). The signature declares them float32
of shape (-1, height, width, channels), so JSON numbers sent to a served model, whole or not, arrive
exactly (a uint8 signature would truncate 127.6 to 127 without a word), and an image of another shape
gets MLflow's schema error before Keras sees it. From Python, pass float32 arrays (``x.astype("float32")``):
MLflow refuses other dtypes by name.

Everything here uses ``MlflowClient``'s public calls: the project holds runs through a client, never as
MLflow's active run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np

KERAS_FILE = "model.keras"
ARTIFACT_PATH = "model"  # the LoggedModel's name: ``runs:/<run id>/model`` finds it
EXAMPLE_IMAGES = 2  # images in the input example: enough to show the shape, small in the artifact store
MODEL_TYPE = "keras-resnet"


class KerasNetwork:
    """What ``mlflow.pyfunc`` loads: the network, predicting logits for a batch of images."""

    def __init__(self, path: str) -> None:
        import keras

        import resnet_lab.data.augment  # noqa: F401 - registers the augmentation layers with Keras
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
    """What loading the model needs, pinned to what trained it. The project itself travels as code
    (``code/resnet_lab``), so only published packages are named."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    wanted = ["mlflow", "keras", "numpy", keras.backend.backend()]
    pinned = []
    for name in wanted:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue  # a backend installed under another name (jax[cuda], torch+cpu): left to the user
    return pinned


def _project_code(into: Path) -> Path:
    """A copy of the ``resnet_lab`` package without caches or bundled configs: the code the model loads with."""
    import resnet_lab

    source = Path(resnet_lab.__file__).parent
    target = into / "resnet_lab"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "conf", "experiments"))
    return target


def save_mlflow_model(network: Any, example_images: np.ndarray, folder: Path, model_id: Optional[str] = None,
                      run_id: Optional[str] = None, example_logits: Optional[np.ndarray] = None) -> Any:
    """Write the MLflow Model of ``network`` into ``folder`` (new), with ``model.keras`` at its top;
    returns its ``MLmodel`` description. ``example_logits``, the network's output for the first example images
    when the caller has it (a run's test predictions), spares a prediction: on TensorFlow, tracing one for a
    ResNet-56 takes seconds."""
    import mlflow.pyfunc
    from mlflow.models import Model, infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        keras_file = Path(tmp) / KERAS_FILE
        network.save(keras_file)
        example = np.asarray(example_images[:EXAMPLE_IMAGES], dtype="float32")  # raw values, as served
        logits = (np.asarray(network.predict(example, verbose=0)) if example_logits is None
                  else np.asarray(example_logits[:EXAMPLE_IMAGES]))
        mlflow.pyfunc.save_model(str(folder), loader_module=__name__, data_path=str(keras_file),
                                 code_paths=[str(_project_code(Path(tmp)))],
                                 signature=infer_signature(example, logits), input_example=example,
                                 pip_requirements=requirements())
    # MLflow copied the file into data/; put it where plain Keras users find it, and point MLmodel there.
    shutil.move(str(folder / "data" / KERAS_FILE), str(folder / KERAS_FILE))
    shutil.rmtree(folder / "data")
    mlmodel = Model.load(str(folder / "MLmodel"))
    mlmodel.flavors["python_function"]["data"] = KERAS_FILE
    mlmodel.model_id, mlmodel.run_id, mlmodel.artifact_path = model_id, run_id, ARTIFACT_PATH
    mlmodel.save(str(folder / "MLmodel"))
    return mlmodel


@contextlib.contextmanager
def logged_model(run: Any, params: Mapping[str, Any], step: int) -> Iterator[str]:
    """A LoggedModel of ``run``, linked to it as its output at ``step``; yields its id. It ends READY,
    or FAILED if the block raises (a half-uploaded model is never offered as usable)."""
    from mlflow.entities import LoggedModelOutput

    client = run.client
    experiment = client.get_run(run.run_id).info.experiment_id
    model = client.create_logged_model(experiment, name=ARTIFACT_PATH, source_run_id=run.run_id,
                                       params={k: str(v) for k, v in params.items()}, model_type=MODEL_TYPE)
    try:
        client.log_outputs(run.run_id, [LoggedModelOutput(model.model_id, step)])
        yield model.model_id
    except BaseException:
        client.finalize_logged_model(model.model_id, "FAILED")
        raise
    client.finalize_logged_model(model.model_id, "READY")


def upload_network(run: Any, model_id: str, network: Any, example_images: np.ndarray,
                   keep_in: Optional[Path] = None, example_logits: Optional[np.ndarray] = None) -> None:
    """Write the network's MLflow Model into the LoggedModel's artifacts (and ``model.keras`` into ``keep_in``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT_PATH
        save_mlflow_model(network, example_images, folder, model_id=model_id, run_id=run.run_id,
                          example_logits=example_logits)
        run.client.log_model_artifacts(model_id, str(folder))
        if keep_in is not None:
            keep_in.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / KERAS_FILE, keep_in / KERAS_FILE)


def model_params(params: Mapping[str, str]) -> Dict[str, str]:
    """The run's parameters a reader of the Models page compares models by."""
    keys = ("model.name", "arch.depth", "arch.params_total", "model.block.kind", "data.name", "seed")
    return {k: params[k] for k in keys if k in params}


def register(client: Any, model_id: str, run_id: str, name: str, tags: Optional[Mapping[str, Any]] = None) -> Any:
    """A new version of registered model ``name`` (created if need be) from a LoggedModel, listed on the
    LoggedModel too (the Models page's "Registered models" column reads that tag)."""
    import json

    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    model = client.get_logged_model(model_id)
    # The source is the LoggedModel's own location: a ``models:/<id>`` source makes MLflow's SQL registry look
    # the model up in the process's global tracking URI instead of this client's.
    version = client.create_model_version(name, source=model.artifact_location, run_id=run_id, model_id=model_id,
                                          tags={k: str(v) for k, v in (tags or {}).items()})
    listed = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    listed.append({"name": version.name, "version": version.version})
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(listed)})
    return version
