"""Where the MLflow store goes, and how the config becomes params."""

from __future__ import annotations

from resnet_lab.tracking import artifact_root, flatten, resolve_uri


def test_the_default_store_is_sqlite_in_the_launch_directory(tmp_path):
    assert resolve_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_relative_stores_are_made_absolute(tmp_path):
    assert resolve_uri("sqlite:///runs/x.db", tmp_path) == f"sqlite:///{tmp_path.resolve()}/runs/x.db"
    assert resolve_uri("stores", tmp_path) == f"sqlite:///{tmp_path.resolve()}/stores/mlflow.db"
    assert resolve_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert resolve_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_artifacts_sit_beside_the_database(tmp_path):
    assert artifact_root(f"sqlite:///{tmp_path}/mlflow.db") == (tmp_path / "mlartifacts").as_uri()
    assert artifact_root("http://127.0.0.1:5000") is None


def test_flatten_gives_dotted_keys():
    assert flatten({"model": {"block": {"type": "basic"}, "widths": [1, 2]}, "seed": 3}) == {
        "model.block.type": "basic", "model.widths": "[1, 2]", "seed": "3"}


def test_config_hash_ignores_reporting_keys_only():
    from helpers.configs import compose_config

    from resnet_lab.tracking.identity import config_hash, group_hash

    base = config_hash(compose_config("train"))
    assert base == config_hash(compose_config("train", ["tracking.experiment=other", "trainer.verbose=0"]))
    assert base == config_hash(compose_config("train", ["data.path=/moved/elsewhere"]))
    assert base != config_hash(compose_config("train", ["trainer.epochs=3"]))
    assert base != config_hash(compose_config("train", ["model=cifar_resnet32"]))
    # A preset's published facts are about the preset, not the run: editing them changes no hash.
    assert base == config_hash(compose_config("train", ["model.reference.source=edited", "model.reference.params=1"]))
    assert group_hash(compose_config("train", ["seed=1"])) == group_hash(compose_config("train", ["seed=2"]))
    assert config_hash(compose_config("train", ["seed=1"])) != config_hash(compose_config("train", ["seed=2"]))


def test_a_store_client_survives_pickling_as_joblib_hands_a_sweep_to_its_workers(tmp_store):
    """The sweep's callback holds the parent run's client; joblib pickles it with every job."""
    import pickle

    from resnet_lab.tracking.store import client_for

    client = pickle.loads(pickle.dumps(client_for(tmp_store)))
    assert client.tracking_uri == tmp_store
    assert client.search_experiments()  # and its calls still go to the store
