"""Does XLA train a model faster on this machine? Graph and XLA steps of one model, taken in turns.

    python benchmarks/xla_cpu.py cifar_resnet20 8 30      # preset, image side, timed steps per mode
    B=256 python benchmarks/xla_cpu.py cifar_resnet20 8 15 # another batch size (default 64)

Prints forward GFLOPs per batch, the median step and the first (tracing/compiling) step of each
mode, XLA's speed-up and the steps after which XLA's longer compile has paid for itself. A run with
`trainer.jit_compile` unset makes the same comparison itself (`resnet_lab.autotune.probe`).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from resnet_lab.config.schema import register_configs
from resnet_lab.model.analysis import analyze
from resnet_lab.model.builder import build_model

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    preset, side, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batch = int(os.environ.get("B", 64))
    register_configs(REPO / "experiments")
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        spec = OmegaConf.to_object(compose("train", [f"model={preset}"]).model)
    x = np.random.rand(batch, side, side, 3).astype("float32")
    y = np.random.randint(0, 10, batch)
    models, first = {}, {}
    for jit in (False, True):
        model = build_model(spec, (side, side, 3), 10)
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=jit)
        started = time.perf_counter()
        model.train_on_batch(x, y)
        first[jit] = time.perf_counter() - started
        model.train_on_batch(x, y)
        models[jit] = model
    gflop = analyze(models[False], spec=spec).flops / 1e9 * batch
    times = {jit: [] for jit in models}
    for _ in range(steps):
        for jit, model in models.items():
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times[jit].append(time.perf_counter() - started)
    graph, xla = statistics.median(times[False]), statistics.median(times[True])
    breakeven = (first[True] - first[False]) / (graph - xla) if graph > xla else float("inf")
    print(f"{preset} {side}px b{batch}: {gflop:.2f} GFLOP/batch fwd | graph {graph * 1000:.0f} ms "
          f"first {first[False]:.1f}s | xla {xla * 1000:.0f} ms first {first[True]:.1f}s | "
          f"speedup {graph / xla:.2f} | breakeven steps {breakeven:.0f}", flush=True)


if __name__ == "__main__":
    main()
