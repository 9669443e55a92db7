"""Seeds of one configuration share its set-up in one process, and no seed can tell: a later seed's model holds what
a fresh build from that seed holds, trains through the functions traced once, and ends bit for bit as it would alone."""

from __future__ import annotations

import random
import weakref

import numpy as np
import pytest
from helpers.collector import collector_sees
from helpers.configs import compose_config
from helpers.processes import run_python
from omegaconf import OmegaConf

from resnet_lab.data import load_splits
from resnet_lab.data.feeding import training_feed
from resnet_lab.runtime import heap
from resnet_lab.training import shared_setup
from resnet_lab.training.build import Recipe
from resnet_lab.training.reseed import BuildDraws, _state_variables, plan_for

# Every kind of seeded state: random kernels, BatchNorm, augmentation and stochastic depth generators, Adam's slots.
RANDOM_EVERYWHERE = ["debug=tiny", "data.augment.crop_padding=1", "data.augment.flip=true", "data.augment.cutout=2",
                     "model.drop_path_rate=0.2", "trainer.label_smoothing=0.1"]


def compiled(seed: int, precision: str = "fp32"):
    cfg = compose_config("train", [*RANDOM_EVERYWHERE, f"seed={seed}"])
    splits = load_splits(cfg.data)
    recipe = Recipe.of(cfg, OmegaConf.to_object(cfg.model), splits.image_shape, splits.num_classes, 3, splits=splits)
    return recipe.build(precision, False), splits


def traces(function) -> int:
    """How often the ``tf.function`` behind one of Keras' train, test or predict functions has been traced."""
    counted = [cell.cell_contents.experimental_get_tracing_count() for cell in function.__closure__ or ()
               if hasattr(cell.cell_contents, "experimental_get_tracing_count")]
    assert counted, "Keras' function no longer holds its tf.function: find another way to count its traces"
    return sum(counted)


def values(model):
    return [np.asarray(v.numpy()) for v in _state_variables(model)]


@pytest.mark.parametrize("precision", ["fp32", "mixed_fp16"])  # mixed_fp16: a loss-scaling optimizer's state too
def test_a_later_seed_holds_exactly_a_fresh_builds_state_and_trains_without_tracing_again(precision):
    first, splits = compiled(1, precision)
    plan, why = plan_for(first.model, first.draws)
    assert plan is not None, why
    feed = training_feed(splits.x_train, splits.y_train, 32, seed=1)
    first.model.fit(**feed, epochs=1, steps_per_epoch=2, verbose=0)  # every kind of state moves
    traced = traces(first.model.train_function)

    plan.apply(2)
    after_reseed = random.getstate()
    fresh, _ = compiled(2, precision)
    assert random.getstate() == after_reseed  # Python's generator as a build from seed 2 leaves it
    for shared, built, variable in zip(values(first.model), values(fresh.model), _state_variables(fresh.model)):
        np.testing.assert_array_equal(shared, built, err_msg=variable.path)

    first.model.fit(**training_feed(splits.x_train, splits.y_train, 32, seed=2), epochs=1, steps_per_epoch=2,
                    verbose=0)
    assert traces(first.model.train_function) == traced


def test_a_build_that_cannot_be_replayed_is_not_shared():
    first, _ = compiled(1)
    plan, why = plan_for(first.model, BuildDraws(1, None))
    assert plan is None and "NumPy" in why
    plan, why = plan_for(first.model, BuildDraws(1, first.draws.count + 1))  # a draw that went to no layer
    assert plan is None and "went to no layer" in why


@pytest.mark.parametrize("overrides, resumed, reason", [
    ([], True, "a resumed run loads its checkpoint"),
    (["trainer.distribution=data_parallel"], False, "trainer.distribution=data_parallel"),
])
def test_runs_that_must_build_their_own_model_say_why(overrides, resumed, reason):
    assert reason in shared_setup.refusal(compose_config("train", overrides), resumed)
    assert shared_setup.refusal(compose_config("train"), False) is None


def test_the_key_is_the_config_but_its_seed_and_tracking():
    def key(*overrides):
        cfg = compose_config("train", ["debug=tiny", *overrides])
        recipe = Recipe.of(cfg, OmegaConf.to_object(cfg.model), (8, 8, 3), 3, 3)
        return shared_setup.key_of(cfg, recipe)

    assert key("seed=1") == key("seed=2") == key("seed=1", "tracking.experiment=other")
    assert key("seed=1") != key("seed=1", "optimizer.learning_rate=0.5")
    assert key("seed=1") != key("seed=1", "trainer.deterministic=true")


def test_a_set_up_let_go_is_freed_not_left_frozen(monkeypatch):
    """Where a command owns the process, a kept set-up is frozen out of the garbage collector's way
    (``runtime/heap.py``); the one a later configuration pushes out is given back to the collector and freed."""
    monkeypatch.setattr(heap, "_managed", True)
    monkeypatch.setattr(shared_setup, "MAX_KEPT", 1)
    try:
        first, _ = compiled(1)
        shared_setup.keep("first", first, None, first.draws)
        assert not collector_sees(first.model)  # frozen: no full collection walks it
        model = weakref.ref(first.model)
        del first
        second, _ = compiled(2)
        shared_setup.keep("second", second, None, second.draws)
        assert model() is None
    finally:
        shared_setup.forget()  # gives every frozen object back to the collector


DETERMINISTIC = ["model=cifar_resnet20", "model.layer_dims=[1,1,1]", "model.width_multiplier=0.25",
                 "data.augment.crop_padding=1", "data.augment.cutout=2", "model.drop_path_rate=0.2",
                 "trainer.epochs=2", "trainer.steps_per_epoch=6", "trainer.deterministic=true",
                 "tracking.enabled=false", "trainer.verbose=0"]
TRAIN_SEEDS = """
    import hashlib, json, logging
    from pathlib import Path
    import numpy as np
    from helpers.configs import compose_config
    from resnet_lab.train import train

    shared = []
    logging.getLogger("resnet_lab").addHandler(logging.Handler())
    logging.getLogger("resnet_lab").handlers[-1].emit = lambda record: shared.append(record.getMessage())
    logging.getLogger("resnet_lab").setLevel(logging.INFO)
    out = {{}}
    for seed in {seeds}:
        folder = Path("seed-%d-of-{seeds}" % seed)
        metrics = train(compose_config("train", [*{overrides}, f"seed={{seed}}"]), output_dir=folder)
        with np.load(sorted((folder / "checkpoints").glob("epoch-*.npz"))[-1]) as last:  # every variable's bytes
            digest = hashlib.sha256(b"".join(last[k].tobytes() for k in sorted(last.files) if k != "paths"))
        out[seed] = {{"metrics": {{k: v for k, v in metrics.items() if "seconds" not in k and "_per_s" not in k}},
                     "checkpoint": digest.hexdigest()}}
    out["shared"] = sum("set-up shared" in line for line in shared)
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_seed_after_another_in_one_process_ends_bit_for_bit_as_it_does_alone(tmp_path):
    """Under trainer.deterministic=true on digits: seed 7 trained after seed 3 (sharing its set-up) against seed 7
    in a fresh process: the same last checkpoint (weights, statistics, optimizer state) and the same metrics."""
    after = run_python(TRAIN_SEEDS.format(seeds=[3, 7], overrides=DETERMINISTIC), tmp_path)
    alone = run_python(TRAIN_SEEDS.format(seeds=[7], overrides=DETERMINISTIC), tmp_path)
    assert after["shared"] == 1 and alone["shared"] == 0
    assert after["7"]["checkpoint"] == alone["7"]["checkpoint"]
    assert after["7"]["metrics"] == alone["7"]["metrics"]
    assert after["3"]["metrics"] != after["7"]["metrics"]  # the seeds differ: the comparison can fail
