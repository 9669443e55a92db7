"""The MLflow run a training run logs to: opened (or the unfinished run of the same config reopened, from its last
verified checkpoint) before anything is trained, and ended however training ends."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, Optional, Sequence

from omegaconf import DictConfig

from resnet_lab import tracking
from resnet_lab.errors import TrainingDiverged
from resnet_lab.tracking.identity import config_hash, group_hash
from resnet_lab.tracking.naming import group_name

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every step of a run needs to know: its config, where it keeps things, and what it logs to."""

    cfg: DictConfig
    spec: Any  # cfg.model as the typed spec the builder takes (``model.spec.ModelConfig``)
    run: Optional[tracking.Run]  # None without tracking
    checkpoint_dir: Path
    output_dir: Optional[Path] = None  # None: nothing outlives the run
    overrides: Sequence[str] = ()
    resumed: bool = False  # continues an unfinished run from its last checkpoint
    uri: Optional[str] = None  # the tracking store the run is in
    in_sweep: bool = False  # a job of a multirun: the sweep, not each job, says where to look
    resume_from: Any = None  # the verified checkpoint state a resumed run continues from (None: its first epoch)


def tracked(untracked: RunContext, sweep_dir: Optional[str], run_name: Optional[str],
            tags: Optional[Dict[str, Any]]) -> ContextManager[RunContext]:
    """The context to train in: with an MLflow run when tracking is on, as it is otherwise."""
    if not untracked.cfg.tracking.enabled:
        return contextlib.nullcontext(untracked)
    return _mlflow_run(untracked, sweep_dir, run_name, tags)


@contextlib.contextmanager
def _mlflow_run(untracked: RunContext, sweep_dir: Optional[str], run_name: Optional[str],
                tags: Optional[Dict[str, Any]]) -> Iterator[RunContext]:
    """Open the run (the unfinished one of this config when resuming); start_run ends it however training ends."""
    cfg = untracked.cfg
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tracking.check_reachable(uri)  # a dead server fails here, in seconds, not after training
    identity = config_hash(cfg)
    previous = _resumable_run(cfg, uri, identity)
    resume = _verified_resume_point(previous)  # before the run is reopened: a refusal leaves it as it was
    parent = tracking.find_sweep_parent(uri, cfg.tracking.experiment, sweep_dir) if sweep_dir else None
    tags = {tracking.TAG_ROLE: "train", "preset": cfg.model.name, "data": cfg.data.name,
            tracking.TAG_CONFIG_HASH: identity, tracking.TAG_GROUP_HASH: group_hash(cfg),
            tracking.TAG_GROUP: group_name(cfg.model.name, untracked.overrides), **(tags or {})}
    with tracking.start_run(uri, cfg.tracking.experiment, cfg.tracking.run_name or run_name or cfg.model.name,
                            tags=tags, parent_run_id=parent,
                            resume_run_id=previous.info.run_id if previous else None) as run:
        checkpoint_dir = _checkpoint_dir(run, previous, untracked, uri)
        if resume is not None and resume.damage is not None:
            _record_fallback(run, previous, resume)
        try:
            yield dataclasses.replace(untracked, run=run, uri=uri, checkpoint_dir=checkpoint_dir,
                                      resumed=previous is not None, resume_from=resume.state if resume else None)
        except TrainingDiverged as exc:
            run.set_tags({tracking.TAG_FAILED_EPOCH: exc.epoch})
            raise


def _resumable_run(cfg: DictConfig, uri: str, identity: str) -> Optional[Any]:
    """With ``trainer.resume``, the newest unfinished run of this config; None when there is none to resume."""
    if not cfg.trainer.resume:
        return None
    previous = tracking.find_resumable_run(uri, cfg.tracking.experiment, identity)
    if previous is None:
        log.info("trainer.resume: no unfinished run of this config (hash %s) to resume; starting a new one",
                 identity)
    return previous


def _verified_resume_point(previous: Optional[Any]) -> Optional[Any]:
    """The checkpoint a resumed run continues from, its files checked against their recorded checksums."""
    from resnet_lab.training.checkpoints import resume_point

    if previous is None:
        return None
    return resume_point(Path(previous.data.tags[tracking.TAG_CHECKPOINT_DIR]))


def _record_fallback(run: tracking.Run, previous: Any, resume: Any) -> None:
    """Say in one line which checkpoint was bad and where the run resumes; tag the redone epochs that were
    logged already, since MLflow keeps their first values beside the new ones at the same steps."""
    log.warning("%s", resume.fallback_line())
    logged = tracking.logged_steps(run, "loss") & set(resume.redone)
    if not logged:
        return
    earlier = previous.data.tags.get(tracking.TAG_REDONE_EPOCHS, "")
    redone = sorted({int(e) for e in earlier.split(",") if e} | logged)
    run.set_tags({tracking.TAG_REDONE_EPOCHS: ",".join(map(str, redone))})


def _checkpoint_dir(run: tracking.Run, previous: Optional[Any], untracked: RunContext, uri: str) -> Path:
    """A resumed run goes on in its own checkpoint folder; a new one records its folder, to be resumed from."""
    if previous is not None:
        checkpoint_dir = Path(previous.data.tags[tracking.TAG_CHECKPOINT_DIR])
        log.info("resuming MLflow run %s from %s", run.run_id, checkpoint_dir)
        return checkpoint_dir
    checkpoint_dir = untracked.checkpoint_dir.resolve()
    if untracked.output_dir is not None:  # a temporary folder vanishes: nothing to resume from
        run.set_tags({tracking.TAG_CHECKPOINT_DIR: str(checkpoint_dir)})
    log.info("MLflow run %s in %s (experiment %r)", run.run_id, uri, untracked.cfg.tracking.experiment)
    return checkpoint_dir


def resumed_tags(context: RunContext) -> Dict[str, str]:
    """The tags a resumed run started with (its precision and XLA setting among them); empty for a new run."""
    if not context.resumed or context.run is None:
        return {}
    return dict(context.run.client.get_run(context.run.run_id).data.tags)
