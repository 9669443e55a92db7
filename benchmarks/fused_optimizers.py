"""What the fused optimizer updates save: a model's first fit (its trace) and its steady epochs, with Keras' own
optimizer and with the fused one, in one process.

    python benchmarks/fused_optimizers.py --json
    python benchmarks/fused_optimizers.py --model cifar_resnet20 --optimizer sgd --rounds 2

Both models are built by the run's own recipe (``training.build.Recipe``: the network behind its augmentation,
compiled as ``resnet-lab-train`` compiles it) on the default data (digits), with the optimizer the config names,
once with ``build_optimizer``'s fused updates and once without. Each gets its first one-epoch fit (the training
step traced; the fused model first, so that what the first trace warms favours Keras' own), then ``--rounds`` rounds of two epochs each, the two models in turns, so that a neighbour's load
falls on both. Printed: the first fit's seconds and the median steady epoch of each, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Dict


def build(model: str, optimizer: str, fused: bool) -> Dict[str, Any]:
    from run_recipe import run_recipe

    from resnet_lab.training import fused_optimizers

    cfg, splits, recipe = run_recipe([f"model={model}", f"optimizer={optimizer}"])
    chosen = fused_optimizers.fused_updates_apply
    fused_optimizers.fused_updates_apply = lambda: fused and chosen()  # what build_optimizer asks
    try:
        compiled = recipe.build("fp32", False)
    finally:
        fused_optimizers.fused_updates_apply = chosen
    return {"model": compiled.model, "cfg": cfg, "splits": splits,
            "optimizer": type(compiled.model.optimizer).__name__}


def fit_seconds(built: Dict[str, Any], epochs: int) -> float:
    from resnet_lab.data.feeding import training_feed

    cfg, splits = built["cfg"], built["splits"]
    started = time.perf_counter()
    built["model"].fit(**training_feed(splits.x_train, splits.y_train, cfg.trainer.batch_size, cfg.seed),
                       epochs=epochs, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from resnet_lab.runtime.startup_noise import import_backend_quietly

    import_backend_quietly()
    # The fused model traces first: whatever the first trace warms in TensorFlow then favours Keras' own.
    models = {"fused": build(args.model, args.optimizer, True), "keras": build(args.model, args.optimizer, False)}
    first = {name: fit_seconds(built, 1) for name, built in models.items()}
    steady = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, built in models.items():
            steady[name].append(fit_seconds(built, 2) / 2)
    median = {name: statistics.median(times) for name, times in steady.items()}
    result = {"model": args.model, "optimizer": args.optimizer,
              "classes": {name: built["optimizer"] for name, built in models.items()},
              "first_fit_s": {k: round(v, 2) for k, v in first.items()},
              "steady_epoch_s": {k: round(v, 3) for k, v in median.items()},
              "first_fit_ratio": round(first["fused"] / first["keras"], 3),
              "steady_ratio": round(median["fused"] / median["keras"], 3)}
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
