"""The sweep's champion against a real MLflow store: which run is chosen, what the registry then holds."""

from __future__ import annotations

import json

import pytest
from helpers.configs import compose_config
from helpers.stores import store

from resnet_lab.sweeps.parent import sweep_champion
from resnet_lab.tracking.champion import ALIAS, pick, register_champion, registry_name


def finished_run(client, experiment: str, group: str, seed: int, metrics: dict, with_model: bool = True):
    """A FINISHED run of ``group`` with ``metrics``, and (as training logs it) a READY LoggedModel as its output."""
    from mlflow.entities import LoggedModelOutput

    run = client.create_run(experiment, run_name=f"{group}-seed{seed}",
                            tags={"resnet_lab.group_hash": group, "resnet_lab.group": group})
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.log_param(run.info.run_id, "seed", seed)
    if with_model:
        model = client.create_logged_model(experiment, name="model", source_run_id=run.info.run_id)
        client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 1)])
        client.finalize_logged_model(model.model_id, "READY")
    client.set_terminated(run.info.run_id)
    return client.get_run(run.info.run_id)


@pytest.fixture
def runs(tmp_path, tmp_store):
    client = store(tmp_path)
    experiment = client.create_experiment("champions")
    made = [
        # group a: the best mean (0.90); its best run is seed 2, though group b holds the single best run
        finished_run(client, experiment, "a", 1, {"best_val_accuracy": 0.88, "test_accuracy": 0.99}),
        finished_run(client, experiment, "a", 2, {"best_val_accuracy": 0.92, "test_accuracy": 0.80}),
        finished_run(client, experiment, "b", 1, {"best_val_accuracy": 0.95, "test_accuracy": 0.70}),
        finished_run(client, experiment, "b", 2, {"best_val_accuracy": 0.70, "test_accuracy": 0.70}),
        finished_run(client, experiment, "c", 1, {"best_val_accuracy": 0.99}, with_model=False),  # nothing to serve
    ]
    return client, made


def test_the_champion_is_the_best_groups_best_run_by_validation_not_test(runs):
    client, made = runs
    assert pick(made, "best_val_accuracy").info.run_name == "a-seed2"  # not b-seed1, nor a-seed1 (best test)
    assert pick(made, "val_loss") is None  # no run has the metric: nothing to choose


def test_a_loss_picks_the_lowest(tmp_path, tmp_store):
    client = store(tmp_path)
    experiment = client.create_experiment("losses")
    made = [finished_run(client, experiment, g, s, {"val_loss": v})
            for g, s, v in (("a", 1, 0.30), ("a", 2, 0.40), ("b", 1, 0.55), ("b", 2, 0.25))]
    assert pick(made, "val_loss").info.run_name == "a-seed1"  # a's mean 0.35 beats b's 0.40; a's lowest


def test_registering_makes_a_version_with_the_alias_and_lists_it_on_the_logged_model(runs):
    client, made = runs
    first = register_champion(client, made, "digits-depth", "best_val_accuracy", "parent-1")
    assert (first.name, first.version, first.run.info.run_name) == ("digits-depth", "1", "a-seed2")
    assert str(client.get_model_version_by_alias("digits-depth", ALIAS).version) == "1"
    model_id = first.run.outputs.model_outputs[0].model_id
    assert json.loads(client.get_logged_model(model_id).tags["mlflow.modelVersions"]) == [
        {"name": "digits-depth", "version": 1}]  # what the Models page's "Registered models" column shows
    assert "champion: version 1 of 'digits-depth' = a seed 2 (best_val_accuracy 0.9200" in first.line()
    assert "models:/digits-depth@champion" in first.line()

    # The same sweep again (a rerun that trained nothing new): the same version, no copy of it.
    again = register_champion(client, made, "digits-depth", "best_val_accuracy", "parent-1")
    assert again.version == "1" and len(client.search_model_versions("name='digits-depth'")) == 1

    # The next sweep's champion is a new version, and the alias moves to it.
    second = register_champion(client, made[2:4], "digits-depth", "best_val_accuracy", "parent-2")
    assert second.version == "2" and str(client.get_model_version_by_alias("digits-depth", ALIAS).version) == "2"
    assert client.get_model_version("digits-depth", "2").tags["resnet_lab.sweep_run_id"] == "parent-2"


def test_runs_without_models_register_nothing_and_say_why(runs):
    client, made = runs
    champion = register_champion(client, made[4:], "digits-depth", "best_val_accuracy", "parent-1")
    assert champion.version is None
    assert champion.line() == "champion: none registered: no run has both best_val_accuracy and a logged model"
    assert client.search_registered_models() == []


def test_a_debug_sweep_never_takes_the_real_models_name():
    assert registry_name("digits-depth", None, debug=False) == "digits-depth"
    assert registry_name("digits-depth", None, debug=True) == "digits-depth-debug"
    assert registry_name("digits-depth", "resnets", debug=True) == "resnets-debug"
    assert registry_name("/Users/ann/depth:v2", None, debug=False) == "depth-v2"  # a path-like experiment name


def test_the_champion_can_be_turned_off_and_a_failed_job_holds_it_back(runs):
    client, made = runs
    off = compose_config("train", ["tracking.champion=false"])
    assert sweep_champion(off, client, "parent", made, failed=[]) is None
    held = sweep_champion(compose_config("train", []), client, "parent", made, failed=["3"])
    assert held.version is None and "1 job(s) failed and the best may be among them" in held.line()
    assert client.search_registered_models() == []
