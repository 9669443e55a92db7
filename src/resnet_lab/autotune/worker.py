"""Timing candidate settings in a process of their own, so that the run's process never runs them.

On a CPU, TensorFlow's graph steps ran 10-35% slower for the rest of a process once an XLA-compiled
model had trained in it (measured on a 2-core Xeon with AMX, TensorFlow 2.21; the steps of a
model timed before and after another one trained with XLA; benchmarks/README.md, "Autotune").
A run that timed XLA in its own process and then chose TensorFlow's graph would have paid that for
its whole training. The run times its static choice itself (and trains that build if it wins);
this worker times the others, built by the run's own ``Recipe``, and reports figures only.

    python -m resnet_lab.autotune.worker FOLDER    # FOLDER/request.pkl in, FOLDER/result.json out
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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from resnet_lab.autotune import settings
from resnet_lab.autotune.settings import Measurement, Setting
from resnet_lab.training.build import Recipe

REQUEST, RESULT = "request.pkl", "result.json"
# Beyond the probe's own budget, what the worker may take to start (imports) before it is stopped.
START_ALLOWANCE_S = 60.0


def time_elsewhere(recipe: Recipe, x: np.ndarray, y: np.ndarray, seed: int, total_steps: int,
                   max_seconds: float, keep_all: bool, start_estimate_s: float):
    """An ``Elsewhere`` for ``probe.probe``: the settings timed by a worker process, within the budget.

    Starting the worker counts against the budget (``start_estimate_s``, then what it took)."""
    batch_size = int(recipe.cfg.trainer.batch_size)

    def elsewhere(to_time: Sequence[Setting], measured: Sequence[Measurement],
                  spent: float) -> Tuple[List[Measurement], Optional[str]]:
        if not keep_all:
            stopped = settings.next_within_budget(to_time[0], measured, spent + start_estimate_s, total_steps,
                                                  batch_size, max_seconds)
            if stopped:
                return [], stopped
        steps = settings.WARMUP_STEPS + settings.TIMED_STEPS
        index = np.arange(steps * batch_size) % len(y)
        request = {"recipe": recipe, "settings": list(to_time), "measured": list(measured),
                   "spent": spent, "x": x[index], "y": y[index], "seed": seed, "total_steps": total_steps,
                   "max_seconds": max_seconds, "share": settings.PROBE_SHARE, "keep_all": keep_all,
                   "started": time.time()}
        with tempfile.TemporaryDirectory(prefix="resnet-lab-probe-") as folder:
            with open(Path(folder) / REQUEST, "wb") as f:
                pickle.dump(request, f)
            budget = max_seconds if not keep_all else max_seconds * len(to_time)
            try:
                done = subprocess.run([sys.executable, "-m", "resnet_lab.autotune.worker", folder], env=_quiet_env(),
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
    from resnet_lab.autotune.timing import time_setting
    from resnet_lab.config.resolvers import register_resolvers
    from resnet_lab.runtime.startup_noise import import_backend_quietly

    register_resolvers()
    import_backend_quietly()
    with open(Path(folder) / REQUEST, "rb") as f:
        request = pickle.load(f)
    measured: List[Measurement] = list(request["measured"])
    spent = request["spent"] + (time.time() - request["started"])  # the worker's start counts
    recipe: Recipe = request["recipe"]
    batch_size = int(recipe.cfg.trainer.batch_size)
    mine: List[Measurement] = []
    stopped = None
    for setting in request["settings"]:
        if not request["keep_all"]:
            stopped = settings.next_within_budget(setting, measured, spent, request["total_steps"], batch_size,
                                                  request["max_seconds"], request["share"])
            if stopped:
                break
        model, measurement, timing = time_setting(setting, lambda s: recipe.build(s.precision, s.jit_compile).model,
                                                  lambda m: m, request["x"], request["y"], batch_size,
                                                  request["seed"])
        measured.append(measurement)
        mine.append(measurement)
        spent += measurement.setup_s + timing["steps_s"]
        _write(Path(folder) / RESULT, mine, None)
        del model
    _write(Path(folder) / RESULT, mine, stopped)


def _write(path: Path, measurements: Sequence[Measurement], stopped: Optional[str]) -> None:
    spare = path.with_suffix(".tmp")
    spare.write_text(json.dumps({"measurements": [m.as_dict() for m in measurements], "stopped": stopped}))
    os.replace(spare, path)


if __name__ == "__main__":
    main(sys.argv[1])
