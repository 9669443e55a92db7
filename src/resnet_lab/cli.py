"""Console entry points: thin ``@hydra.main`` wrappers over ``train``, ``describe``, ``compare`` and ``bench``.

User mistakes (bad config values, missing data) end as one line on stderr and exit code 2,
never a traceback. In a multirun a failing job is recorded (its MLflow run FAILED) and the
sweep goes on; the sweep callback reports the failures at the end.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import hydra
from omegaconf import DictConfig

from resnet_lab.config.paths import CONFIG_DIR, EXPERIMENTS_DIR
from resnet_lab.config.resolvers import register_resolvers
from resnet_lab.config.schema import register_configs
from resnet_lab.errors import UserError
from resnet_lab.runtime.slurm import CANCELLED, end_cleanly_when_cancelled, was_cancelled
from resnet_lab.runtime.startup_noise import QUIET_BY_DEFAULT, debugging, import_backend_quietly, show_debug_lines
from resnet_lab.tracking.credentials import credentials_from_uri_args

log = logging.getLogger("resnet_lab")

# The only classes a command-line `_target_` may name: this project's and Hydra's own plugins.
ALLOWED_TARGETS = (
    "resnet_lab.sweeps.callback.MlflowSweepCallback",
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "hydra_plugins.resnet_lab_sweeper.until_resolved.UntilResolvedSweeper",
    "hydra_plugins.resnet_lab_sweeper.optuna_search.OptunaSearchSweeper",
    # Optuna's samplers, for hydra.sweeper.sampler._target_ (hparams_search=optuna)
    "optuna.samplers.TPESampler",
    "optuna.samplers.RandomSampler",
    "optuna.samplers.GPSampler",
    "optuna.samplers.CmaEsSampler",
    "optuna.samplers.QMCSampler",
    "optuna.samplers.NSGAIISampler",
    "optuna.samplers.BruteForceSampler",
)


def _quiet_backends() -> None:
    # TensorFlow's C++ chatter, unless the user chose a level or RESNET_LAB_DEBUG asks for everything
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ and not debugging():
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        os.environ[QUIET_BY_DEFAULT] = "1"  # sweep jobs in other processes filter its start-up notices too


def _refuse_unlisted_targets(args: List[str]) -> None:
    """A command-line override must not make the framework import and call arbitrary code."""
    from resnet_lab.errors import ConfigError

    for arg in args:
        key, _, value = arg.lstrip("+~").partition("=")
        if key.endswith("_target_") and value not in ALLOWED_TARGETS:
            raise ConfigError(key, value, "one of " + ", ".join(repr(t) for t in ALLOWED_TARGETS))


def _experiment_without_plus(args: List[str]) -> List[str]:
    """``+experiment=NAME`` means ``experiment=NAME``: the group sits in the defaults list (so that ``debug=``
    comes after it), where Hydra would refuse the appending ``+``; both spellings keep working."""
    return [arg[1:] if arg.startswith("+experiment=") else arg for arg in args]


def _launch(hydra_main: Callable[[], None]) -> None:
    """Run a Hydra main; config mistakes Hydra finds while composing become one line and exit code 2."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    from resnet_lab.config.hydra_errors import one_line

    _own_the_heap()
    _quiet_backends()
    logging.raiseExceptions = False  # a log file on a full disk must not print a traceback per record
    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        _refuse_unlisted_targets(sys.argv[1:])
        sys.argv[1:] = _experiment_without_plus(sys.argv[1:])
        sys.argv[1:] = credentials_from_uri_args(sys.argv[1:], os.environ)  # passwords never reach Hydra's files
        register_configs(EXPERIMENTS_DIR)
        os.environ["HYDRA_FULL_ERROR"] = "1"  # let compose errors reach us instead of Hydra's printer
        hydra_main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (ConfigCompositionException, OverrideParseException) as exc:
        if wants_traceback:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)


@functools.cache  # once per process: one exit handler
def _own_the_heap() -> None:
    """The command owns its process's heap. What is built to stay (the backend, a set-up kept for later seeds) is
    frozen out of the garbage collector's way as it is built (``runtime.heap``), and at the interpreter's exit,
    after the exit handlers registered later (MLflow's, joblib's) have run, the whole heap is. Python's last garbage
    collections walk every object TensorFlow made and free nothing the OS does not: 1.8 s at the exit of a process
    that only imported TensorFlow, about 4 s after a sweep (2-core AVX2 EPYC), against 0.2 s frozen. An exit
    handler, so that a caller of these functions in a longer process keeps its collections. A job's process
    (joblib's workers, submitit's jobs) does it too."""
    import atexit
    import gc

    from resnet_lab.runtime import heap

    heap.manage()
    atexit.register(gc.freeze)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _job_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _record_job_failure(exc: BaseException) -> float:
    """Leave a marker in the job's folder (the sweeper counts them) and let the sweep go on."""
    from resnet_lab.sweeps.jobs import mark_failed

    mark_failed(_job_dir(), exc)
    return float("nan")


def _guard(task: Callable[[DictConfig], Optional[float]]) -> Callable[[DictConfig], Optional[float]]:
    """Turn user errors into one line; in a multirun, keep the other jobs going."""

    def wrapped(cfg: DictConfig) -> Optional[float]:
        register_resolvers()  # a job of joblib or submitit runs in a fresh process
        _own_the_heap()
        show_debug_lines()  # after Hydra has set up this job's logging
        end_cleanly_when_cancelled()  # scancel: the run ends KILLED, not RUNNING
        try:
            return task(cfg)
        except KeyboardInterrupt:  # the run is already KILLED and its last checkpoint kept
            if was_cancelled() and _is_multirun():  # one cancelled Slurm job: the sweep goes on without it
                log.error("%s", CANCELLED)
                return _record_job_failure(RuntimeError(CANCELLED))
            print("interrupted: the MLflow run is KILLED and its last checkpoint kept; "
                  "rerun with trainer.resume=true to continue it", file=sys.stderr)
            sys.exit(130)
        except UserError as exc:
            if _is_multirun():
                log.error("error: %s", exc)
                return _record_job_failure(exc)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except Exception as exc:
            if _is_multirun():
                log.exception("job failed")
                return _record_job_failure(exc)
            raise

    return wrapped


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@_guard
def _train(cfg: DictConfig) -> Optional[float]:
    from hydra.core.hydra_config import HydraConfig

    from resnet_lab.sweeps.jobs import mark_skipped, sweep_dir_of
    from resnet_lab.train import plan_run, train

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = _is_multirun()
    sweep_dir = sweep_dir_of(hydra_cfg.sweep.dir) if multirun else None
    plan = plan_run(cfg, overrides, sweep_dir, hydra_cfg.job.num if multirun else None)
    if plan.finished is not None:
        log.info("skipped: run %s (%s) already FINISHED with this config (tracking.skip_finished=true)",
                 plan.finished.info.run_id, plan.finished.info.run_name)
        if multirun:
            mark_skipped(_job_dir(), plan.finished.info.run_id)
        return plan.finished.data.metrics.get(cfg.trainer.monitor, float("nan"))
    metrics = train(cfg, output_dir=_job_dir(), overrides=overrides, sweep_dir=sweep_dir, plan=plan)
    return metrics[cfg.trainer.monitor]  # what sweepers (Optuna, ...) optimize


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="describe")
@_guard
def _describe(cfg: DictConfig) -> None:
    import_backend_quietly()
    from resnet_lab.describe import describe, render

    print(render(describe(cfg), cfg.describe.format), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="compare")
@_guard
def _compare(cfg: DictConfig) -> None:
    from resnet_lab.compare.comparison import comparison

    result = comparison(cfg)
    print(result.text, flush=True)
    for line in result.where_to_look():  # on stderr: the table on stdout stays machine-readable
        print(line, file=sys.stderr)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
@_guard
def _bench(cfg: DictConfig) -> None:
    import_backend_quietly()
    from resnet_lab.bench import bench, render

    print(render(bench(cfg), cfg.bench.format), flush=True)


def train_main() -> None:
    _launch(_train)


def describe_main() -> None:
    _launch(_describe)


def compare_main() -> None:
    _launch(_compare)


def bench_main() -> None:
    _launch(_bench)
