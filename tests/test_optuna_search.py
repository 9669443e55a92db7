"""The Optuna search end to end, through the real CLI: a search stopped after its first batch and run again ends
with every trial once, in one study and one parent run; a clearly bad trial is pruned and reads as pruned."""

from __future__ import annotations

import signal
import time
import warnings

import pytest
from helpers.configs import TINY
from helpers.processes import run_cli, start_cli
from helpers.stores import sweep_runs

SEARCH = ["-m", "hparams_search=optuna", *TINY, "trainer.epochs=3", "trainer.verbose=0", "hydra.sweep.dir=sweep"]


def study_of(folder):
    """The one study in the default storage beside the test's store, read as Optuna reads it (None before the
    sweeper has made it: the journal file is opened first)."""
    import optuna

    warnings.simplefilter("ignore")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna.journal")))
    names = optuna.get_all_study_names(storage)
    if not names:
        return None
    (name,) = names
    return optuna.load_study(study_name=name, storage=storage)


def wait_for_second_batch(folder, process, timeout=300):
    """Block until the first batch is told and the second is running."""
    from optuna.trial import TrialState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        study = study_of(folder) if (folder / "optuna.journal").exists() else None
        if study is not None:
            states = [t.state for t in study.trials]
            if states.count(TrialState.COMPLETE) >= 2 and states.count(TrialState.RUNNING) >= 1:
                return
        time.sleep(0.3)
    pytest.fail("the search never reached its second batch")


@pytest.mark.slow
def test_a_search_stopped_after_its_first_batch_and_run_again_trains_each_trial_once(tmp_path, tmp_store):
    from optuna.trial import TrialState

    args = [*SEARCH, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=6", "hydra.sweeper.pruner=none", "tracking.log_model=false"]
    process = start_cli("resnet-lab-train", args, tmp_path)
    wait_for_second_batch(tmp_path, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "will be asked again; rerun the same command" in stderr
    _, (parent,), _ = sweep_runs(tmp_path)
    assert parent.info.status == "KILLED"  # never left RUNNING

    result = run_cli("resnet-lab-train", args, tmp_path)  # the same command
    assert result.returncode == 0, result.stderr[-3000:]
    assert "optuna: continuing study" in result.stdout
    client, parents, children = sweep_runs(tmp_path)
    assert [p.info.run_id for p in parents] == [parent.info.run_id] and parents[0].info.status == "FINISHED"
    study = study_of(tmp_path)
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    cut_off = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(finished) == 6 and cut_off and all(t.user_attrs.get("resnet_lab.interrupted") for t in cut_off)
    assert {t.user_attrs["resnet_lab.retry_of"] for t in finished if "resnet_lab.retry_of" in t.user_attrs} == \
        {t.number for t in cut_off}  # each cut-off trial asked again, with its values
    # No trial trained twice: one FINISHED run a trial, each epoch logged once; a cut-off run went on in place.
    assert len(children) == 6 and {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags["resnet_lab.config_hash"] for c in children}) == 6
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == [1, 2, 3], child.info.run_name
    assert sorted(int(c.data.tags["resnet_lab.optuna.trial"]) for c in children) == sorted(t.number for t in finished)
    assert "6 trials: 6 finished, 0 pruned, 0 failed" in result.stdout


@pytest.mark.slow
def test_a_clearly_bad_trial_is_pruned_and_never_counts_as_finished(tmp_path, tmp_store):
    args = [*SEARCH, "trainer.batch_size=32", "optimizer.learning_rate=tag(log,interval(0.001,10))",
            "hydra.sweeper.enqueue=[{optimizer.learning_rate:0.01},{optimizer.learning_rate:0.02},"
            "{optimizer.learning_rate:10}]", "hydra.sweeper.n_trials=3", "hydra.sweeper.startup_trials=2",
            "hydra.sweeper.warmup_epochs=1"]
    result = run_cli("resnet-lab-train", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "optuna: trial 2 pruned after epoch 1" in result.stdout
    assert "3 trials: 2 finished, 1 pruned, 0 failed" in result.stdout
    client, (parent,), children = sweep_runs(tmp_path)
    (bad,) = [c for c in children if float(c.data.params["optimizer.learning_rate"]) == 10]
    assert bad.info.status == "FINISHED" and bad.data.tags["resnet_lab.pruned_epoch"] == "1"
    assert bad.info.run_name.startswith("cifar_resnet20-t02-lr10-wd")
    assert (tmp_path / "sweep" / "2" / "checkpoints" / "state.json").exists()  # its checkpoints are kept
    study = study_of(tmp_path)
    assert study.trials[2].state.name == "PRUNED"
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**best trial ") and "| 2 | pruned |" in note
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/param_importances.png", "plots/parallel_coordinate.png"} \
        <= artifacts
    champion = parent.data.tags["champion"]  # the best trial's model, never the pruned one
    version = client.get_model_version_by_alias(champion.split(" v")[0], "champion")
    assert version.run_id != bad.info.run_id and version.run_id == client.search_runs(
        [parent.info.experiment_id], f"tags.`resnet_lab.optuna.trial` = '{study.best_trial.number}'")[0].info.run_id

    # The same config again with skip_finished trains again: a pruned run is no finished twin.
    again = run_cli("resnet-lab-train", [*TINY, "trainer.epochs=3", "trainer.verbose=0", "trainer.batch_size=32",
                                         "optimizer.learning_rate=10.0",
                                         f"optimizer.weight_decay={bad.data.params['optimizer.weight_decay']}",
                                         "tracking.skip_finished=true", "tracking.log_model=false"], tmp_path)
    assert again.returncode == 0 and "skipped" not in again.stderr, again.stderr[-3000:]
    compared = run_cli("resnet-lab-compare", ["compare.status=FINISHED", "compare.group=none", "compare.format=csv"],
                       tmp_path)
    assert bad.info.run_name not in compared.stdout
