"""Timing candidate settings in a process of their own, so that the run's process never runs them.

On a CPU, TensorFlow's graph steps ran 10-35% slower for the rest of a process once an XLA-compiled
model had trained in it (measured on a 2-core Xeon with AMX, TensorFlow 2.21; the steps of a
model timed before and after another one trained with XLA; benchmarks/README.md, "Autotune").
A run that timed XLA in its own process and then chose TensorFlow's graph would have paid that for
its whole training. The run times its static choice itself (and trains that build if it wins);
this worker times the others, as the run would build them, and reports figures only.

    python -m resnet_lab.probe_worker FOLDER    # FOLDER/request.pkl in, FOLDER/result.json out
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from resnet_lab import autotune
from resnet_lab.autotune import Measurement, Setting

REQUEST, RESULT = "request.pkl", "result.json"
# Beyond the probe's own budget, what the worker may take to start (imports) before it is stopped.
START_ALLOWANCE_S = 60.0


def recipe(cfg: Any, spec: Any, image_shape: Sequence[int], num_classes: int, steps_per_epoch: int,
           augment: bool = True) -> Dict[str, Any]:
    """What the worker needs to build a candidate as the run does."""
    return {"cfg": cfg, "spec": spec, "image_shape": tuple(int(d) for d in image_shape),
            "num_classes": int(num_classes), "steps_per_epoch": int(steps_per_epoch), "augment": augment}


def time_elsewhere(build_recipe: Dict[str, Any], x: np.ndarray, y: np.ndarray, seed: int, total_steps: int,
                   max_seconds: float, keep_all: bool, start_estimate_s: float):
    """An ``Elsewhere`` for ``probe.probe``: the settings timed by a worker process, within the budget.

    Starting the worker counts against the budget (``start_estimate_s``, then what it took)."""
    batch_size = int(build_recipe["cfg"].trainer.batch_size)

    def elsewhere(settings: Sequence[Setting], measured: Sequence[Measurement],
                  spent: float) -> Tuple[List[Measurement], Optional[str]]:
        if not keep_all:
            stopped = autotune.next_within_budget(settings[0], measured, spent + start_estimate_s, total_steps,
                                                  batch_size, max_seconds)
            if stopped:
                return [], stopped
        steps = autotune.WARMUP_STEPS + autotune.TIMED_STEPS
        index = np.arange(steps * batch_size) % len(y)
        request = {"recipe": build_recipe, "settings": list(settings), "measured": list(measured),
                   "spent": spent, "x": x[index], "y": y[index], "seed": seed, "total_steps": total_steps,
                   "max_seconds": max_seconds, "share": autotune.PROBE_SHARE, "keep_all": keep_all,
                   "started": time.time()}
        with tempfile.TemporaryDirectory(prefix="resnet-lab-probe-") as folder:
            with open(Path(folder) / REQUEST, "wb") as f:
                pickle.dump(request, f)
            budget = max_seconds if not keep_all else max_seconds * len(settings)
            try:
                done = subprocess.run([sys.executable, "-m", "resnet_lab.probe_worker", folder], env=_quiet_env(),
                                      capture_output=True, text=True, timeout=budget + START_ALLOWANCE_S)
                failure = None if done.returncode == 0 else _last_line(done.stderr)
            except subprocess.TimeoutExpired:
                failure = f"the probe's worker ran past {budget + START_ALLOWANCE_S:.0f} s and was stopped"
            return _read_result(Path(folder) / RESULT, failure)

    return elsewhere


def _quiet_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return f"the probe's worker failed: {lines[-1][:300] if lines else 'no message'}"


def _read_result(path: Path, failure: Optional[str]) -> Tuple[List[Measurement], Optional[str]]:
    """The worker's figures so far (it writes them after each setting), and why it stopped early."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        result = {"measurements": [], "stopped": None}
    measurements = [Measurement.from_dict(m) for m in result["measurements"]]
    return measurements, failure or result.get("stopped")


def main(folder: str) -> None:
    from resnet_lab.probe import time_setting
    from resnet_lab.resolvers import register_resolvers
    from resnet_lab.startup_noise import import_backend_quietly

    register_resolvers()
    import_backend_quietly()
    with open(Path(folder) / REQUEST, "rb") as f:
        request = pickle.load(f)
    measured: List[Measurement] = list(request["measured"])
    spent = request["spent"] + (time.time() - request["started"])  # the worker's start counts
    batch_size = int(request["recipe"]["cfg"].trainer.batch_size)
    mine: List[Measurement] = []
    stopped = None
    for setting in request["settings"]:
        if not request["keep_all"]:
            stopped = autotune.next_within_budget(setting, measured, spent, request["total_steps"], batch_size,
                                                  request["max_seconds"], request["share"])
            if stopped:
                break
        model, measurement, timing = time_setting(setting, lambda s: build(request["recipe"], s, request["seed"]),
                                                  lambda m: m, request["x"], request["y"], batch_size,
                                                  request["seed"])
        measured.append(measurement)
        mine.append(measurement)
        spent += measurement.setup_s + timing["steps_s"]
        _write(Path(folder) / RESULT, mine, None)
        del model
    _write(Path(folder) / RESULT, mine, stopped)


def build(build_recipe: Dict[str, Any], setting: Setting, seed: int) -> Any:
    """The model as the run builds and compiles it in ``setting``."""
    from resnet_lab.data.augment import with_augmentation
    from resnet_lab.model.builder import build_model
    from resnet_lab.optim import compile_model
    from resnet_lab.runtime import seed_everything

    cfg = build_recipe["cfg"]
    seed_everything(seed)
    model = build_model(build_recipe["spec"], build_recipe["image_shape"], build_recipe["num_classes"],
                        precision=setting.precision)
    if build_recipe["augment"]:
        model = with_augmentation(model, cfg.data.augment)
    return compile_model(model, cfg, build_recipe["num_classes"], build_recipe["steps_per_epoch"], setting.precision,
                         setting.jit_compile)


def _write(path: Path, measurements: Sequence[Measurement], stopped: Optional[str]) -> None:
    spare = path.with_suffix(".tmp")
    spare.write_text(json.dumps({"measurements": [m.as_dict() for m in measurements], "stopped": stopped}))
    os.replace(spare, path)


if __name__ == "__main__":
    main(sys.argv[1])
