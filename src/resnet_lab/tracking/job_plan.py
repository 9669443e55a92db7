"""How one training job is reported before it starts: its run name and tags, or the FINISHED twin it can skip to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig

from resnet_lab.tracking.identity import config_hash
from resnet_lab.tracking.naming import run_name
from resnet_lab.tracking.search import finished_twin
from resnet_lab.tracking.store import check_reachable, resolve_uri
from resnet_lab.tracking.tags import TAG_JOB_NUM, TAG_SWEEP_DIR


@dataclass
class JobPlan:
    run_name: Optional[str] = None
    tags: Dict[str, Any] = field(default_factory=dict)
    finished: Optional[Any] = None  # an MLflow run with the same config hash (tracking.skip_finished)


def plan_job(cfg: DictConfig, overrides: List[str], sweep_dir: Optional[str] = None,
             job_num: Optional[int] = None) -> JobPlan:
    """Name the run from its overrides, link it to its sweep, and find a FINISHED twin to skip to."""
    plan = JobPlan()
    if not cfg.tracking.enabled:
        return plan
    uri = resolve_uri(cfg.tracking.uri)
    check_reachable(uri)  # a dead server fails here, in seconds, not after training
    if sweep_dir is not None:
        plan.tags = {TAG_SWEEP_DIR: sweep_dir, TAG_JOB_NUM: job_num}
    plan.run_name = cfg.tracking.run_name or run_name(cfg.model.name, overrides)
    if cfg.tracking.skip_finished:
        plan.finished = finished_twin(uri, cfg.tracking.experiment, config_hash(cfg))
    return plan
