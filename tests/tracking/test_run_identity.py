"""What a run is called, what it records, and when an identical run is skipped."""

from __future__ import annotations

from helpers.configs import TINY, compose_config
from helpers.stores import store

from resnet_lab import tracking
from resnet_lab.tracking.job_plan import plan_job
from resnet_lab.tracking.naming import group_name, run_name


def test_run_names_come_from_the_overrides():
    overrides = ["model=resnet34", "optimizer.learning_rate=0.1", "trainer.batch_size=128", "tracking.uri=x.db",
                 "trainer.verbose=0", "+experiment=depth_sweep", "hydra.launcher.n_jobs=4"]
    assert run_name("resnet34", overrides) == "resnet34-lr0.1-bs128"
    assert run_name("resnet50", ["model/block=bottleneck", "model.layer_dims=[3, 4, 6, 3]", "seed=7"]) == \
        "resnet50-bottleneck-dims[3,4,6,3]-seed7"


def test_repeats_share_a_group_name_that_leaves_out_the_seed():
    overrides = ["model=resnet34", "trainer.epochs=3", "seed=2", "data=synthetic"]
    assert run_name("resnet34", overrides) == "resnet34-ep3-seed2-synthetic"
    assert group_name("resnet34", overrides) == "resnet34-ep3-synthetic"
    # Runs of 3 and 30 epochs are never named alike, whether run alone or as jobs of a sweep.
    assert run_name("cifar_resnet20", ["trainer.epochs=3"]) != run_name("cifar_resnet20", ["trainer.epochs=30"])


def test_skip_finished_finds_the_finished_run_with_the_same_config(tmp_path, tmp_store):
    from resnet_lab.train import train

    base = [*TINY, "trainer.epochs=1", "trainer.verbose=0", "tracking.log_model=false", f"tracking.uri={tmp_store}"]
    train(compose_config("train", base))
    finished = store(tmp_path).search_runs([store(tmp_path).get_experiment_by_name("resnet-lab").experiment_id])
    assert len(finished) == 1 and finished[0].info.status == "FINISHED"

    twin = plan_job(compose_config("train", base + ["tracking.skip_finished=true", "trainer.verbose=1"]),
                    [], None, None).finished
    assert twin is not None and twin.info.run_id == finished[0].info.run_id  # verbosity is not identity
    assert plan_job(compose_config("train", base + ["tracking.skip_finished=true", "seed=7"]), [], None, None) \
        .finished is None  # another seed is another run
    assert plan_job(compose_config("train", base), [], None, None).finished is None  # off by default


def test_credentials_in_uris_are_never_recorded():
    cfg = compose_config("train", ["tracking.uri=https://alice:s3cret@mlflow.example.org:8443/"])
    recorded = str(tracking.public_config(cfg))
    assert "s3cret" not in recorded and "https://alice:***@mlflow.example.org:8443/" in recorded
    assert tracking.redact_overrides(["tracking.uri=http://bob:pw@h:1", "hydra.job.env_set.TOKEN=abc", "seed=1"]) \
        == ["tracking.uri=http://bob:***@h:1", "hydra.job.env_set.TOKEN=***", "seed=1"]
    # a sweep job's overrides come escaped by Hydra
    assert tracking.redact_overrides([r"tracking.uri=http\://bob\:pw@h\:1"]) == [r"tracking.uri=http\://bob\:***@h\:1"]
    assert tracking.redact_uri("http://h:5000/a@b") == "http://h:5000/a@b"  # no password, nothing to hide
