"""Seconds each layer of a command's imports costs, imported in order in one fresh process.

    KERAS_BACKEND=tensorflow python benchmarks/import_times.py
    KERAS_BACKEND=jax python benchmarks/import_times.py
"""

import json
import time

marks = [("start", time.perf_counter())]
import resnet_lab.cli  # noqa: E402,F401  what every command imports first

marks.append(("resnet_lab.cli (hydra, omegaconf)", time.perf_counter()))
import keras  # noqa: E402,F401

marks.append(("keras and its backend", time.perf_counter()))
from mlflow.tracking import MlflowClient  # noqa: E402,F401

marks.append(("mlflow.tracking", time.perf_counter()))
from resnet_lab.model import analysis, builder  # noqa: E402,F401
from resnet_lab.training import callbacks, optim  # noqa: E402,F401

marks.append(("builder, analysis, callbacks, optim", time.perf_counter()))
print(json.dumps({name: round(t - marks[i][1], 2) for i, (name, t) in enumerate(marks[1:])}))
