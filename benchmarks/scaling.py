"""Training throughput and memory against depth and batch size: a Markdown table for benchmarks/README.md.

Each cell is one `resnet-lab-bench` process (peak memory is per process), with MLflow off:

    python benchmarks/scaling.py --models resnet18 resnet34 resnet50 resnet101 resnet152 \
        --batch-sizes 16 64 --steps 5 > scaling.md

Extra arguments after `--` go to every bench command, e.g. `-- data.image_shape=[64,64,3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

SRC = Path(__file__).resolve().parent.parent / "src"
BENCH = "from resnet_lab.cli import bench_main; bench_main()"


def measure(model: str, batch_size: int, steps: int, extra: List[str]) -> Dict:
    args = [f"model={model}", f"trainer.batch_size={batch_size}", f"bench.steps={steps}", "bench.warmup_steps=1",
            "bench.format=json", "tracking.enabled=false", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", BENCH, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{model} batch {batch_size} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


HEADER = ("| model | depth | params | GFLOPs/image | batch | train images/s | vs first row of its batch | "
          "step ms (median) | inference images/s | first step s | host peak MB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def row(r: Dict, base: float) -> str:
    return (f"| {r['model']} | {r['depth']} | {r['params_total'] / 1e6:.1f}M | {r['gflops_per_image']:.3f} | "
            f"{r['batch_size']} | {r['train_images_per_s']:.1f} | {r['train_images_per_s'] / base:.2f} | "
            f"{r['step_ms_median']:.0f} | {r['eval_images_per_s']:.1f} | {r['first_step_s']:.1f} | "
            f"{r['host_peak_mb']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="overrides passed to every bench command (after --)")
    args = parser.parse_args()

    started = time.time()
    print(HEADER, flush=True)
    rows = []
    for batch_size in args.batch_sizes:  # rows appear as they are measured: a long run is never lost
        for model in args.models:
            rows.append(measure(model, batch_size, args.steps, args.extra))
            base = next(r for r in rows if r["batch_size"] == batch_size)["train_images_per_s"]
            print(row(rows[-1], base), flush=True)
    first = rows[0]
    print(f"\n{first['backend']} backend, Keras {first['keras']}, {first['precision']}, {first['device']}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"{'x'.join(map(str, first['image_shape']))} {first['data']} images, {args.steps} timed steps per cell; "
          f"{time.time() - started:.0f} s in all")


if __name__ == "__main__":
    main()
