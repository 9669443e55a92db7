"""The Optuna search's pieces, fast: the search space read as Hydra's Optuna sweeper reads it, trial run names,
the study's name and storage, the pruners, and the one-line errors of the real CLI before any job starts."""

from __future__ import annotations

import warnings

import pytest
from helpers.processes import run_cli
from helpers.stores import runs_in

from resnet_lab.errors import ConfigError
from resnet_lab.sweeps.optuna.space import describe, hydra_text, parse_space
from resnet_lab.sweeps.optuna.study import Options, open_study, study_name_of
from resnet_lab.sweeps.optuna.summary import short_value, trial_run_name
from resnet_lab.training.trial_link import PRUNERS, STORAGE_ENV, PrunerSpec, open_storage, storage_url

DEFAULT_SPACE = {"optimizer.learning_rate": "tag(log, interval(1e-4, 1e-1))",
                 "optimizer.weight_decay": "tag(log, interval(1e-6, 1e-2))",
                 "trainer.batch_size": "choice(32, 64, 128)"}


def options(**changes):
    settings = dict(n_trials=20, n_jobs=1, direction="maximize", study_name=None, storage=None, sampler=None,
                    pruner=PrunerSpec())
    return Options(**{**settings, **changes})


def test_the_space_reads_hydras_optuna_syntax_and_the_command_line_wins():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = parse_space({**DEFAULT_SPACE, "model.widths": "choice([8,16],[16,32])", "trainer.epochs": "4"},
                        ["optimizer.weight_decay=interval(0.0, 0.01)", "seed=range(1, 9, 2)",
                         "model.layer_dims=tag(int, log, interval(1, 8))", "debug=tiny"])
    d = space.distributions
    assert d["optimizer.learning_rate"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["optimizer.weight_decay"] == FloatDistribution(0.0, 0.01)  # the command line's, not params'
    assert d["trainer.batch_size"] == CategoricalDistribution([32, 64, 128])
    assert d["seed"] == IntDistribution(1, 7, step=2)  # range's end is left out, as in Python
    assert d["model.layer_dims"] == IntDistribution(1, 8, log=True)
    assert space.fixed == ["trainer.epochs=4", "debug=tiny"]
    overrides = space.overrides({"optimizer.learning_rate": 0.00011527987128232407, "optimizer.weight_decay": 1e-3,
                                 "trainer.batch_size": 64, "model.widths": "[16,32]", "seed": 3,
                                 "model.layer_dims": 2})
    assert "optimizer.learning_rate=0.00011527987128232407" in overrides  # every digit reaches the job
    assert "model.widths=[16,32]" in overrides  # a list stays a list
    assert describe(d["optimizer.learning_rate"]) == "tag(log, interval(0.0001, 0.1))"
    assert describe(d["seed"]) == "range(1, 9, 2)"


@pytest.mark.parametrize("text, why", [
    ("interval(2, 1)", "low <= high"),
    ("tag(log, interval(0, 1))", "low > 0"),
    ("glob(*)", "choice"),
    ("shuffle(range(1, 3))", "shuffle() draws nothing"),
    ("tag(cube, interval(1, 2))", "not cube"),
    ("interval(1", "no viable alternative"),
    ("tag(int, interval(1.5, 3))", "whole numbers"),
])
def test_a_space_optuna_cannot_read_names_the_key_the_value_and_the_forms(text, why):
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.params.optimizer.momentum='.*' is not allowed: ") as error:
        parse_space({"optimizer.momentum": text}, [])
    assert why in str(error.value) and "interval(a, b)" in str(error.value)


@pytest.mark.parametrize("value", [0.00011527987128232407, 1e-300, 3, -2.5, "a b", "32", "it's", True, None,
                                   [1, 2], "cifar_resnet20-t07-lr1.15e-04"])
def test_a_drawn_value_reaches_the_job_as_it_was_drawn(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert OverridesParser.create().parse_override(f"k={hydra_text(value)}").value() == value


def test_run_names_carry_the_trial_number_and_three_significant_digits():
    params = {"optimizer.learning_rate": 0.00011527987128232407, "optimizer.weight_decay": 0.00757947995334801,
              "trainer.batch_size": 32}
    assert trial_run_name("cifar_resnet20", 7, params) == "cifar_resnet20-t07-lr1.15e-04-wd7.58e-03-bs32"
    assert trial_run_name("x", 123, {"model": "cifar_resnet32", "model/block": "bottleneck",
                                     "optimizer.momentum": 0.9}) == "cifar_resnet32-t123-bottleneck-mom0.9"
    assert [short_value(v) for v in (0.25, 12345.6, 0.0, 10.0, "adam")] == ["0.25", "1.23e+04", "0", "10", "adam"]


def test_the_study_name_is_the_search_and_leaves_out_how_it_runs():
    space = parse_space(DEFAULT_SPACE, ["debug=tiny"])
    name = study_name_of(options(), space, "resnet-lab")
    assert name.startswith("resnet-lab-") and len(name) == len("resnet-lab-") + 12
    how = options(n_trials=50, n_jobs=4, storage="x.journal", pruner=PrunerSpec("hyperband"))
    assert study_name_of(how, space, "resnet-lab") == name
    reporting = ["debug=tiny", "hydra/launcher=joblib", "tracking.uri=other.db", "trainer.verbose=0",
                 "trainer.resume=true", "tracking.log_model=false"]
    assert study_name_of(options(), parse_space(DEFAULT_SPACE, reporting), "resnet-lab") == name
    different = [study_name_of(options(direction="minimize"), space, "resnet-lab"),
                 study_name_of(options(), parse_space(DEFAULT_SPACE, ["debug=tiny", "seed=2"]), "resnet-lab"),
                 study_name_of(options(), parse_space(DEFAULT_SPACE, ["debug=tiny", "trainer.batch_size=32"]),
                               "resnet-lab"),
                 study_name_of(options(), space, "other")]
    assert name not in different and len(set(different)) == 4
    assert study_name_of(options(study_name="mine"), space, "resnet-lab") == "mine"


def test_the_storage_is_beside_a_local_store_from_the_environment_or_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_url(None, "sqlite:///stores/mlflow.db", {}) == str(tmp_path / "stores" / "optuna.journal")
    assert storage_url(None, None, {}) == str(tmp_path / "optuna.journal")
    assert storage_url(None, "http://server:5000", {STORAGE_ENV: "postgresql://u:secret@db/optuna"}) == \
        "postgresql://u:secret@db/optuna"
    assert storage_url("runs/s.journal", None, {}) == str(tmp_path / "runs" / "s.journal")
    assert storage_url("sqlite:///s.db", None, {}) == f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ConfigError, match=rf"^hydra.sweeper.storage=None is not allowed: .*\${STORAGE_ENV}"):
        storage_url(None, "http://server:5000", {})


def test_a_storage_that_cannot_open_is_one_line_without_its_password(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as error:
        open_storage(str(tmp_path / "file" / "optuna.journal"))  # a folder that is a file
    assert str(error.value).startswith(f"hydra.sweeper.storage='{tmp_path}/file/optuna.journal' is not allowed: ")
    with pytest.raises(ConfigError) as error:
        open_storage("postgresql+nodriver://user:secret@localhost/optuna")
    assert "secret" not in str(error.value) and "\n" not in str(error.value)


def test_a_stored_study_of_another_direction_or_space_is_refused(tmp_path):
    warnings.simplefilter("ignore")
    url = str(tmp_path / "optuna.journal")
    space = parse_space(DEFAULT_SPACE, [])
    open_study(open_storage(url), url, "s", options(), space)
    open_study(open_storage(url), url, "s", options(n_trials=99), space)  # the same search, more trials: fine
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.direction='minimize' is not allowed: 'maximize', the "
                                          r"direction of the stored study, or another hydra.sweeper.study_name"):
        open_study(open_storage(url), url, "s", options(direction="minimize"), space)
    narrower = parse_space({**DEFAULT_SPACE, "trainer.batch_size": "choice(32, 64)"}, [])
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.params.trainer.batch_size='choice\(32, 64\)' is not "
                                          r"allowed: choice\(32, 64, 128\), as the stored study searches it"):
        open_study(open_storage(url), url, "s", options(), narrower)


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_builds_from_its_settings(name):
    import optuna

    pruner = PrunerSpec(name, warmup_epochs=3, startup_trials=2).build(epochs=10)
    assert isinstance(pruner, optuna.pruners.BasePruner)


def test_a_pruner_setting_that_cannot_work_is_refused():
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.pruner='asha' is not allowed: one of none, median, "):
        PrunerSpec("asha").check()
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.warmup_epochs=0 is not allowed"):
        PrunerSpec(warmup_epochs=0).check()


def test_the_cli_refuses_a_space_optuna_cannot_read_before_any_job_or_run(tmp_path, tmp_store):
    result = run_cli("resnet-lab-train", ["-m", "hparams_search=optuna", "optimizer.learning_rate=interval(1, 0.1)",
                                          "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: optimizer.learning_rate='interval(1, 0.1)' is not allowed: interval(a, b), ")
    assert runs_in(tmp_path, "resnet-lab")[1] == [] and not (tmp_path / "sweep" / "0").exists()


@pytest.mark.slow  # seconds of MLflow and Hydra start-up for what the test above checks of open_storage
def test_the_cli_refuses_a_storage_that_cannot_open_before_any_job_or_run(tmp_path, tmp_store):
    (tmp_path / "taken").write_text("")
    result = run_cli("resnet-lab-train", ["-m", "hparams_search=optuna", "hydra.sweeper.storage=taken/optuna.journal",
                                          "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert line.startswith(f"error: hydra.sweeper.storage='{tmp_path}/taken/optuna.journal' is not allowed: null ")
    assert runs_in(tmp_path, "resnet-lab")[1] == []
