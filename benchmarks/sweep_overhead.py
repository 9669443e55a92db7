"""How much of a seed sweep's wall time is training: the 6-run sweep of two depths and three seeds, as a user runs it.

    python benchmarks/sweep_overhead.py --json
    python benchmarks/sweep_overhead.py --launchers basic --epochs 2    # quicker, the basic launcher only
    python benchmarks/sweep_overhead.py --launchers basic --seeds 15    # 15 seeds a depth, as a verdict needs

Each sweep runs ``resnet-lab-train -m model=cifar_resnet20,cifar_resnet56 seed=1,2,3 trainer.epochs=5`` (the default
data: scikit-learn's digits) in a fresh folder with its own MLflow store and autotune cache, and is timed from the
command's start to its exit. Its runs are then read back from the store:

- ``steady_s``: the sum over runs of epochs x the run's median ``epoch_train_seconds``, what training would cost
  with every run already set up and traced;
- ``steady_share``: ``steady_s`` over the sweep's wall time (the basic launcher: one process, one job at a time);
- ``overhead_per_run``: wall time minus ``steady_s``, over the runs;
- ``train_s``: the sum of the runs' ``train_seconds`` (wall time around ``fit``, tracing included);
- ``later_seed_share`` and ``overhead_per_later_seed`` (the basic launcher): what each seed after a configuration's
  first costs, from the previous job's end to its own (its Hydra composition, set-up, training, testing and
  recording, read from the runs' MLflow start and end times), and the share of it that is steady training. The
  sweep's share tends to it as seeds are added, the once-per-process costs (imports, a new store, each model's
  first build and trace) spread over more runs: ``--seeds 15`` measures a sweep of a verdict's size.

The joblib sweep (``hydra/launcher=joblib``, 2 workers) reports its wall time; its steady figures overlap in time.
The CPU's model name and flags, and the load average before and after, are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

MODELS = "cifar_resnet20,cifar_resnet56"
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def sweep(launcher: str, epochs: int, seeds: int, folder: Path, extra: List[str]) -> Dict[str, Any]:
    """Run the sweep in ``folder`` and read its runs back."""
    folder.mkdir(parents=True)
    seed_list = ",".join(str(seed) for seed in range(1, seeds + 1))
    command = [str(Path(sys.executable).parent / "resnet-lab-train"), "-m", f"model={MODELS}", f"seed={seed_list}",
               f"trainer.epochs={epochs}", *LAUNCHERS[launcher], *extra]
    env = {**os.environ, "RESNET_LAB_CACHE_DIR": str(folder / "cache")}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (folder / "output.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"the {launcher} sweep failed (exit {result.returncode}); its output: {folder / 'output.txt'}")
    runs = _runs(f"sqlite:///{folder / 'mlflow.db'}")
    steady = sum(_steady(r) for r in runs)
    figures = {"command": " ".join(["resnet-lab-train", *command[1:]]), "wall_s": round(wall, 1), "runs": len(runs),
               "steady_s": round(steady, 1), "train_s": round(sum(r["train_s"] for r in runs), 1),
               "steady_share": round(steady / wall, 3),
               "overhead_per_run": round((wall - steady) / max(1, len(runs)), 1)}
    if launcher == "basic":  # one job at a time: each run's cost is the time since the previous one ended
        figures.update(_later_seeds(runs))
    return {**figures, "each": [{k: v for k, v in r.items() if not k.endswith("_ms")} for r in runs]}


def _steady(run: Dict[str, Any]) -> float:
    return run["epochs"] * run["median_epoch_train_s"]


def _later_seeds(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The seeds after each configuration's first, in a sweep that ran one job at a time: what each cost from the
    previous job's end to its own, and the share of it that is steady training."""
    ordered = sorted(runs, key=lambda r: r["start_ms"])
    seen, cost, steady, later = set(), 0.0, 0.0, 0
    for previous, run in zip([None, *ordered], ordered):
        if run["preset"] in seen:  # never the first run, so there is a previous one
            cost += (run["end_ms"] - previous["end_ms"]) / 1000
            steady += _steady(run)
            later += 1
        seen.add(run["preset"])
    if not later:
        return {}
    return {"later_seeds": later, "later_seed_share": round(steady / cost, 3),
            "overhead_per_later_seed": round((cost - steady) / later, 2)}


def _runs(uri: str) -> List[Dict[str, Any]]:
    """Each training run: its preset, seed, epochs, median epoch training time and ``train_seconds``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = []
    for run in client.search_runs(experiments, "tags.`resnet_lab.role` = 'train'"):
        epochs = client.get_metric_history(run.info.run_id, "epoch_train_seconds")
        found.append({"preset": run.data.tags.get("preset"), "seed": int(run.data.params["seed"]),
                      "epochs": len(epochs), "median_epoch_train_s": round(statistics.median(m.value for m in epochs), 3),
                      "train_s": round(run.data.metrics["train_seconds"], 2),
                      "start_ms": run.info.start_time, "end_ms": run.info.end_time})
    return sorted(found, key=lambda r: (r["preset"], r["seed"]))


def cpu() -> Dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return {"model": name, "cores": os.cpu_count(), "flags": [f for f in FLAGS if f in flags]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--launchers", default="basic,joblib", help="comma-separated: basic, joblib")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N of each depth (default 3)")
    parser.add_argument("--keep", help="run in this folder (new) and keep it; default: a temporary one")
    parser.add_argument("overrides", nargs="*", help="more overrides for every sweep")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sweep-overhead-"))
    report: Dict[str, Any] = {"cpu": cpu(), "load_before": os.getloadavg()}
    for launcher in args.launchers.split(","):
        report[launcher] = sweep(launcher, args.epochs, args.seeds, root / launcher, args.overrides)
    report["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report))
        return
    for launcher in args.launchers.split(","):
        figures = report[launcher]
        print(f"{launcher}: {figures['runs']} runs in {figures['wall_s']} s; steady training {figures['steady_s']} s "
              f"({figures['steady_share']:.0%}); {figures['overhead_per_run']} s a run elsewhere")
        if "later_seed_share" in figures:
            print(f"  each seed after a depth's first: {figures['overhead_per_later_seed']} s besides its steady "
                  f"training ({figures['later_seed_share']:.0%} of its cost)")
    print(f"CPU: {report['cpu']}; load {report['load_before']} -> {report['load_after']}")


if __name__ == "__main__":
    main()
