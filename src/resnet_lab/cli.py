"""Console entry points: thin ``@hydra.main`` wrappers over ``train``, ``describe`` and ``bench``.

User mistakes (bad config values, missing data) end as one line on stderr and exit code 2,
never a traceback. In a multirun a failing job is recorded (its MLflow run FAILED) and the
sweep goes on; the sweep callback reports the failures at the end.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import hydra
from omegaconf import DictConfig

from resnet_lab.config import register_configs
from resnet_lab.errors import UserError

log = logging.getLogger("resnet_lab")

_PACKAGE = Path(__file__).resolve().parent


def _find(folder: str) -> Path:
    """Inside an installed wheel the folder sits in the package; in a checkout, at the top level."""
    packaged = _PACKAGE / folder
    return packaged if packaged.is_dir() else _PACKAGE.parent.parent / folder


CONFIG_DIR = _find("conf")
EXPERIMENTS_DIR = _find("experiments")


def _quiet_backends() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _record_job_failure(exc: BaseException) -> float:
    """Leave a marker in the job's folder (the sweep callback counts them) and let the sweep go on."""
    from hydra.core.hydra_config import HydraConfig

    from resnet_lab.sweep import JOB_FAILED_FILE

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / JOB_FAILED_FILE).write_text(f"{type(exc).__name__}: {exc}\n")
    return float("nan")


def _guard(task: Callable[[DictConfig], Optional[float]]) -> Callable[[DictConfig], Optional[float]]:
    """Turn user errors into one line; in a multirun, keep the other jobs going."""

    def wrapped(cfg: DictConfig) -> Optional[float]:
        try:
            return task(cfg)
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

    from resnet_lab.sweep import sweep_dir_of
    from resnet_lab.train import train

    hydra_cfg = HydraConfig.get()
    metrics = train(
        cfg,
        output_dir=Path(hydra_cfg.runtime.output_dir),
        overrides=list(hydra_cfg.overrides.task),
        sweep_dir=sweep_dir_of(hydra_cfg.sweep.dir) if _is_multirun() else None,
    )
    return metrics[cfg.trainer.monitor]  # what sweepers (Optuna, ...) optimize


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="describe")
@_guard
def _describe(cfg: DictConfig) -> None:
    from resnet_lab.describe import describe, render

    print(render(describe(cfg), cfg.describe.format), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
@_guard
def _bench(cfg: DictConfig) -> None:
    from resnet_lab.bench import bench, render

    print(render(bench(cfg), cfg.bench.format), flush=True)


def train_main() -> None:
    _quiet_backends()
    register_configs(EXPERIMENTS_DIR)
    _train()


def describe_main() -> None:
    _quiet_backends()
    register_configs(EXPERIMENTS_DIR)
    _describe()


def bench_main() -> None:
    _quiet_backends()
    register_configs(EXPERIMENTS_DIR)
    _bench()
