"""What a run's validation and testing cost: Keras' ``evaluate`` and ``predict``, as runs used them first, and
Keras' ``predict`` alone, as they used it next, against what runs do now (``training/steps.py``), in one process.

    python benchmarks/inference_passes.py --json
    python benchmarks/inference_passes.py --model cifar_resnet20 --epochs 10 --rounds 5

A model is built by the run's own recipe (``training.build.Recipe``) on the default data (digits) and fitted for
two steps. Each way then does what a run of ``--epochs`` epochs does after training, from functions made afresh
(so that each way pays its traces, as a run's first seed of a configuration does):

- Keras' own: ``evaluate`` on the validation split each epoch, then ``evaluate`` and ``predict`` on the test split;
- ``predict`` alone: the validation split each epoch and the test split through ``model.predict`` in full training
  batches (a short last batch filled up), the loss and accuracy computed from the logits (``loss_and_accuracy``);
- now: the same passes straight into the traced predict function (``predict_on_batch``, no ``tf.data`` pipeline per
  pass), in batches that hold the validation split up to four training batches (``predict_in_full_batches`` at
  ``inference_batch_size``).

The ways take turns for ``--rounds`` rounds, in reversed order every other round; printed are each one's
seconds, their medians and the ratios of the medians to Keras' (below 1: quicker than Keras').
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable, Dict, List


def build(model: str) -> Dict[str, Any]:
    from run_recipe import run_recipe

    from resnet_lab.data.feeding import training_feed

    cfg, splits, recipe = run_recipe([f"model={model}"])
    batch_size = int(cfg.trainer.batch_size)
    network = recipe.build("fp32", False).model
    two_steps = slice(0, 2 * batch_size)
    network.fit(**training_feed(splits.x_train[two_steps], splits.y_train[two_steps], batch_size, cfg.seed),
                epochs=1, verbose=0)
    return {"model": network, "splits": splits, "batch_size": batch_size}


def keras_passes(built: Dict[str, Any], epochs: int) -> None:
    from resnet_lab.data.feeding import feed

    model, splits, batch_size = built["model"], built["splits"], built["batch_size"]
    model.test_function = model.predict_function = None  # made and traced afresh
    for _ in range(epochs):
        model.evaluate(**feed(splits.x_val, splits.y_val, batch_size), verbose=0)
    model.evaluate(**feed(splits.x_test, splits.y_test, batch_size), verbose=0)
    model.predict(**feed(splits.x_test, None, batch_size), verbose=0)


def _passes(built: Dict[str, Any], epochs: int, predict: Callable[[Any, Any, int], Any], batch_size: int) -> None:
    from resnet_lab.training.evaluation import loss_and_accuracy

    model, splits = built["model"], built["splits"]
    model.test_function = model.predict_function = None
    for x, y in [(splits.x_val, splits.y_val)] * epochs + [(splits.x_test, splits.y_test)]:
        loss_and_accuracy(model, y, predict(model, x, batch_size))


def keras_predict_passes(built: Dict[str, Any], epochs: int) -> None:
    import numpy as np

    from resnet_lab.data.feeding import feed, filled_up

    def predict(model: Any, x: Any, batch_size: int) -> Any:
        return np.asarray(model.predict(**feed(filled_up(x, batch_size), None, batch_size), verbose=0))[:len(x)]

    _passes(built, epochs, predict, built["batch_size"])


def current_passes(built: Dict[str, Any], epochs: int) -> None:
    from resnet_lab.data.feeding import inference_batch_size, predict_in_full_batches

    _passes(built, epochs, predict_in_full_batches, inference_batch_size(built["batch_size"],
                                                                         len(built["splits"].y_val)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--epochs", type=int, default=5, help="validation passes, as in a run of this many epochs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from resnet_lab.runtime.startup_noise import import_backend_quietly

    import_backend_quietly()
    built = build(args.model)
    ways: Dict[str, Callable[[Dict[str, Any], int], None]] = {
        "keras": keras_passes, "predict": keras_predict_passes, "now": current_passes}
    seconds: Dict[str, List[float]] = {name: [] for name in ways}
    for round_number in range(args.rounds):
        order = list(ways) if round_number % 2 == 0 else list(reversed(ways))
        for name in order:
            started = time.perf_counter()
            ways[name](built, args.epochs)
            seconds[name].append(round(time.perf_counter() - started, 3))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    report = {"model": args.model, "epochs": args.epochs, "seconds": seconds,
              "median_s": {name: round(value, 3) for name, value in medians.items()},
              "ratio_to_keras": {name: round(medians[name] / medians["keras"], 3) for name in ("predict", "now")}}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.model}, {args.epochs} validations and the test: "
          f"Keras' evaluate and predict {medians['keras']:.2f} s, predict alone {medians['predict']:.2f} s, "
          f"now {medians['now']:.2f} s "
          f"(ratios {report['ratio_to_keras']['predict']}, {report['ratio_to_keras']['now']})")


if __name__ == "__main__":
    main()
