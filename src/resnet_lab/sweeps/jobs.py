"""A sweep's jobs: what they are (expanded from the overrides), checked before any starts, and the marker files a
job leaves in its output folder so that the sweeper that launched it can count it as failed or skipped.

Jobs may run in other processes (joblib, submitit, Slurm): the markers are how they talk back.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.errors import ConfigError

JOB_FAILED_FILE = "job_failed.txt"  # written into a job's output folder when the job fails
JOB_SKIPPED_FILE = "job_skipped.txt"  # holds the id of the FINISHED run a skipped job stands for


def sweep_dir_of(sweep_dir: str) -> str:
    """The multirun folder made absolute: the key by which jobs find their parent run."""
    return str((tracking.launch_dir() / sweep_dir).resolve())


def swept_keys(config: DictConfig) -> List[str]:
    """Keys that vary between the jobs: sweep overrides (``a=1,2``) and the sweeper's ``params``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    params = config.hydra.sweeper.get("params") or {}
    return keys + [str(k).lstrip("+~") for k in params if str(k).lstrip("+~") not in keys]


def job_overrides(config: DictConfig) -> Optional[List[List[str]]]:
    """Each job's overrides, as the basic sweeper will run them (for until_resolved: its first round); None for a
    sweeper that draws its jobs as it goes (Optuna)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    target = str(config.hydra.sweeper.get("_target_", ""))
    if not (target.endswith("BasicSweeper") or target.endswith("UntilResolvedSweeper")):
        return None
    parser = OverridesParser.create()
    task = parser.parse_overrides(list(config.hydra.overrides.task))
    given = {o.key_or_group for o in task}
    params = config.hydra.sweeper.get("params") or {}
    swept = [o for o in task if o.is_sweep_override()]
    swept += [parser.parse_override(f"{k}={v}") for k, v in params.items() if str(k).lstrip("+~") not in given]
    fixed = [o.input_line for o in task if not o.is_sweep_override()]
    choices = [[f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()] for o in swept]
    return [fixed + list(job) for job in itertools.product(*choices)]


def validate_sweep(config: DictConfig) -> None:
    """Compose and check every job of the sweep, and the sweeper's direction, before any job (or the parent run)
    starts: a mistake in one value leaves no run behind."""
    from hydra import compose

    from resnet_lab.config.validation import validate_train_config

    _check_direction(config)
    for overrides in job_overrides(config) or ():
        validate_train_config(compose(config.hydra.job.config_name, overrides=overrides))


def _check_direction(config: DictConfig) -> None:
    """An optimizing sweeper (Optuna) must maximize accuracies and minimize losses."""
    direction = config.hydra.sweeper.get("direction")
    if direction is None:
        return
    wanted = "minimize" if config.trainer.monitor.endswith("loss") else "maximize"
    if str(direction) != wanted:
        raise ConfigError("hydra.sweeper.direction", str(direction),
                          f"{wanted!r} for trainer.monitor={config.trainer.monitor!r}")


def hydra_files(config: DictConfig) -> List[Path]:
    """The files Hydra writes for a job (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) and a sweep
    (``multirun.yaml``)."""
    from hydra.types import RunMode

    files = []
    output_dir = OmegaConf.select(config, "hydra.runtime.output_dir", default=None)  # unset in a sweep's parent
    if config.hydra.output_subdir is not None and output_dir:
        folder = Path(output_dir) / config.hydra.output_subdir
        files += [folder / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    if config.hydra.mode == RunMode.MULTIRUN:
        files.append(Path(sweep_dir_of(config.hydra.sweep.dir)) / "multirun.yaml")
    return files


# -- the markers ---------------------------------------------------------------------------------------------

def mark_skipped(output_dir: Path, run_id: str) -> None:
    """A job skipped for an identical FINISHED run names that run, so the sweep's table includes it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / JOB_SKIPPED_FILE).write_text(run_id + "\n")


def mark_failed(output_dir: Path, exc: BaseException) -> None:
    """Say in the job's folder that it failed and why; the sweeper counts these."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / JOB_FAILED_FILE).write_text(f"{type(exc).__name__}: {exc}\n")


def skipped_run_id(job_dir: Optional[Path]) -> Optional[str]:
    """The FINISHED run a skipped job stands for; None when the job was not skipped."""
    if job_dir is None or not (job_dir / JOB_SKIPPED_FILE).exists():
        return None
    return (job_dir / JOB_SKIPPED_FILE).read_text().strip() or None


def has_failed(job_dir: Optional[Path]) -> bool:
    return job_dir is not None and (job_dir / JOB_FAILED_FILE).exists()


def failed_jobs(sweep_dir: Path) -> List[str]:
    """The job folders of a sweep that hold a failure marker: every failed job, also those that failed before
    their MLflow run existed."""
    return sorted(p.parent.name for p in sweep_dir.glob(f"*/{JOB_FAILED_FILE}"))


def skipped_run_ids(sweep_dir: Path) -> List[str]:
    return [run_id for job in sorted(sweep_dir.glob(f"*/{JOB_SKIPPED_FILE}"))
            if (run_id := skipped_run_id(job.parent))]


def job_count(sweep_dir: Path) -> int:
    return len([p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")])


def output_dir_of(job_return: Any) -> Optional[Path]:
    """The output folder of a job, from what the launcher returned for it."""
    config = job_return.hydra_cfg
    output = OmegaConf.select(config, "hydra.runtime.output_dir", default=None) if config else None
    return Path(output) if output else None


def failure_line(failed: List[str], jobs: int, sweep_dir: Any, parent_id: str) -> str:
    """The sweep's last line when jobs failed (on stderr; the sweep then exits 1)."""
    return (f"error: {len(failed)} of {jobs} sweep jobs failed (job {', '.join(failed)}; reasons in "
            f"{sweep_dir}/<job>/{JOB_FAILED_FILE}); see MLflow run {parent_id}")


# -- what every project sweeper does first ---------------------------------------------------------------------

def configured_launcher(hydra_context: Any, task_function: Any, config: DictConfig) -> Any:
    """The launcher the sweep's config names (basic, joblib, submitit, Slurm), as Hydra's own sweepers get it."""
    from hydra.core.plugins import Plugins

    return Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function,
                                                   config=config)


def save_multirun_config(config: DictConfig) -> None:
    """``multirun.yaml`` in the sweep's folder, as the basic sweeper writes it."""
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
