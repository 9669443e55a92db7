"""Every experiment sweeps by itself: each job composes and validates, and a shrunken copy of each
sweep runs through the real CLI. The Optuna search runs two trials (tests/test_optuna_search.py: resume, pruning)."""

from __future__ import annotations

import json
import itertools

import pytest
import yaml
from helpers.configs import EXPERIMENTS, TINY, compose_config
from helpers.processes import run_cli
from helpers.stores import sweep_runs
from hydra.core.override_parser.overrides_parser import OverridesParser

from resnet_lab.config.paths import EXPERIMENTS_DIR
from resnet_lab.config.resolvers import layer_dims_for_depth
from resnet_lab.config.validation import validate_train_config
from resnet_lab.errors import ConfigError

SWEPT = {  # what each experiment's own sweep covers
    "depth_sweep": ("model", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]),
    "cifar_depth": ("model", ["cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56",
                              "cifar_resnet110"]),
    "width_sweep": ("model.widths", ["[16,32,64]", "[32,64,128]", "[64,128,256]"]),
    "block_sweep": ("model/block", ["basic", "preact_basic", "bottleneck", "preact_bottleneck"]),
    "seed_reproduction": ("model", ["seed_resnet18", "seed_resnet34"]),
    "digits_depth": ("model", ["cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56"]),
}
SEEDS = {"digits_depth": ["1", "2", "3"]}  # experiments that repeat each configuration with several seeds
SINGLE_RUNS = {"he2015_cifar"}  # a recipe reproduced as one run, not a sweep
# Under debug=tiny every stage has one block: the depth a job reports follows from its stages and block type.
TINY_DEPTHS = {
    "depth_sweep": {"resnet18": 10, "resnet34": 10, "resnet50": 14, "resnet101": 14, "resnet152": 14},
    "block_sweep": {"basic": 8, "preact_basic": 8, "bottleneck": 11, "preact_bottleneck": 11},
}
SMOKE = [*TINY, "trainer.epochs=1", "trainer.steps_per_epoch=1", "trainer.verbose=0", "tracking.log_model=false",
         "hydra.sweep.dir=sweep"]


def sweep_jobs(name):
    """The job override lists of an experiment's own sweep (its ``hydra.sweeper.params``)."""
    cfg = compose_config("train", [f"experiment={name}"], hydra=True)
    parser = OverridesParser.create()
    swept = [parser.parse_override(f"{k}={v}") for k, v in cfg.hydra.sweeper.params.items()]
    choices = [[f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()] for o in swept]
    return [list(job) for job in itertools.product(*choices)]


def test_every_experiment_declares_its_sweep():
    assert sorted(SWEPT) == [e for e in EXPERIMENTS if e not in SINGLE_RUNS]


@pytest.mark.parametrize("name", sorted(SWEPT))
def test_every_job_of_every_experiment_composes_and_validates(name):
    jobs = sweep_jobs(name)
    key, values = SWEPT[name]
    seeds = SEEDS.get(name)
    assert jobs == ([[f"{key}={v}", f"seed={s}"] for v in values for s in seeds] if seeds
                    else [[f"{key}={v}"] for v in values])
    for job in jobs:
        validate_train_config(compose_config("train", [f"experiment={name}", *job]))


def test_block_sweep_holds_the_depth_at_56():
    dims = {block: list(compose_config("train", ["experiment=block_sweep", f"model/block={block}"]).model.layer_dims)
            for block in SWEPT["block_sweep"][1]}
    assert dims == {"basic": [9, 9, 9], "preact_basic": [9, 9, 9], "bottleneck": [6, 6, 6],
                    "preact_bottleneck": [6, 6, 6]}
    with pytest.raises(ConfigError, match=r"model.layer_dims=.* is not allowed: a depth of 2 \+ 3 stages"):
        layer_dims_for_depth(57, 3, "basic")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SWEPT))
def test_each_experiment_sweeps_through_the_cli_under_debug_tiny(tmp_path, tmp_store, name):
    """What a user's smoke test of an experiment runs; the older spelling ``+experiment=`` is kept working."""
    seeds = ["seed=1,2"] if name in SEEDS else []  # repeats, as in CI: two seeds rather than the default three
    result = run_cli("resnet-lab-train", ["-m", f"+experiment={name}", *SMOKE, *seeds], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    experiment = yaml.safe_load((EXPERIMENTS_DIR / f"{name}.yaml").read_text())["tracking"]["experiment"]
    _, parents, children = sweep_runs(tmp_path, experiment)
    (parent,) = parents
    repeats = 2 if seeds else 1
    assert len(children) == repeats * len(SWEPT[name][1]) and {c.info.status for c in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    assert set(parent.data.tags["resnet_lab.swept_keys"].split(",")) == {SWEPT[name][0], *(["seed"] if seeds else [])}
    assert {c.data.params["data.name"] for c in children} == {"synthetic"}
    if SWEPT[name][0] == "model":  # every job built its own preset
        assert sorted(c.data.params["model.name"] for c in children) == sorted(SWEPT[name][1] * repeats)
    if seeds:  # repeats: the sweep ends on its pairwise verdict, in the terminal and on the parent run
        assert "pairs resolved" in result.stdout and "Welch's t per pair, Holm-adjusted" in result.stdout
        assert parent.data.tags["mlflow.note.content"].startswith("**test_accuracy on this test set: ")
        assert "| pair | n | difference [95%] |" in parent.data.tags["mlflow.note.content"]
        compared = run_cli("resnet-lab-compare", [f"tracking.experiment={experiment}", "compare.parent=latest",
                                                  "compare.format=json", "compare.scope=new_data"], tmp_path)
        pairs = json.loads(compared.stdout)["pairs"]
        assert pairs and all(p["new_data_diff"] is not None and p["scope"] == "new_data" for p in pairs)
    if name in TINY_DEPTHS:
        swept = "model.name" if name == "depth_sweep" else "model.block.type"
        assert {c.data.params[swept]: int(c.data.params["arch.depth"]) for c in children} == TINY_DEPTHS[name]


@pytest.mark.slow
def test_optuna_search_runs_two_trials_and_optimizes_what_training_returns(tmp_path, tmp_store):
    result = run_cli("resnet-lab-train", ["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", *SMOKE],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (parent,), children = sweep_runs(tmp_path)
    assert len(children) == 2 and parent.info.status == "FINISHED"
    assert set(parent.data.tags["resnet_lab.swept_keys"].split(",")) == {
        "optimizer.learning_rate", "optimizer.weight_decay", "trainer.batch_size"}
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())["best_value"]
    assert best == pytest.approx(max(c.data.metrics["val_accuracy"] for c in children))
    assert sorted(c.info.run_name.split("-")[1] for c in children) == ["t00", "t01"]  # the trial's number
    assert all(c.info.run_name.startswith("cifar_resnet20-") and "-lr" in c.info.run_name and "-bs" in c.info.run_name
               for c in children)  # named by each drawn value, to 3 significant digits


def test_optuna_must_minimize_a_loss(tmp_path):
    result = run_cli("resnet-lab-train", ["-m", "hparams_search=optuna", "trainer.monitor=val_loss", "hydra.sweep.dir=sweep"],
                     tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweeper.direction='maximize' is not allowed: 'minimize' for trainer.monitor='val_loss'")
    assert not (tmp_path / "mlflow.db").exists()  # refused before the sweep's parent run
