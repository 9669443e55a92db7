"""train(cfg) -> metrics: one training run as a list of steps; a plain function, no Hydra inside, so tests and the
CLI share it. The steps live in ``training/`` (``steps``, ``tracked_run``, ``run_record``); choosing the precision
and XLA setting (``autotune``) sits above them, here."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from resnet_lab.autotune.settings import Setting
from resnet_lab.config.validation import validate_train_config
from resnet_lab.runtime.startup_noise import import_backend_quietly
from resnet_lab.tracking.job_plan import JobPlan, plan_job
from resnet_lab.training import steps
from resnet_lab.training.run_record import log_setup_once, record
from resnet_lab.training.steps import Built, Prepared
from resnet_lab.training.tracked_run import RunContext, resumed_tags, tracked

log = logging.getLogger(__name__)

CHECKPOINT_FOLDER = "checkpoints"  # inside the run's output folder


def plan_run(cfg: DictConfig, overrides: Sequence[str] = (), sweep_dir: Optional[str] = None,
             job_num: Optional[int] = None) -> JobPlan:
    """Check the config (before anything is looked up or logged: a typo leaves no run behind), then name the run
    and find a FINISHED twin it may skip to."""
    validate_train_config(cfg)
    return plan_job(cfg, list(overrides), sweep_dir, job_num)


def train(cfg: DictConfig, output_dir: Optional[Path] = None, overrides: Sequence[str] = (),
          sweep_dir: Optional[str] = None, plan: Optional[JobPlan] = None) -> Dict[str, float]:
    """Load data, build, fit, evaluate on the test split and log it all; returns the final metrics.

    ``output_dir`` receives the checkpoints and the trained model (a temporary folder when None, and then
    the run cannot be resumed); ``overrides`` are the command-line overrides kept with the run;
    ``sweep_dir`` links the run to its multirun parent; ``plan`` (``plan_run``: made here when None) names and tags
    the run. With ``trainer.resume=true`` the newest unfinished run of the same config continues from its last
    checkpoint, in the same MLflow run.
    """
    if plan is None:
        plan = plan_run(cfg, overrides)
    import_backend_quietly()
    with contextlib.ExitStack() as stack:
        own_dir = output_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        untracked = RunContext(cfg, OmegaConf.to_object(cfg.model), None, checkpoint_dir=own_dir / CHECKPOINT_FOLDER,
                               output_dir=output_dir, overrides=overrides, in_sweep=sweep_dir is not None)
        context = stack.enter_context(tracked(untracked, sweep_dir, plan.run_name, plan.tags))
        return _run(context)


def _run(context: RunContext) -> Dict[str, float]:
    """One training run, step by step; the model's steps run in the distribution scope."""
    from resnet_lab.runtime.backend import distribution_scope

    prepared = steps.prepare(context)
    with distribution_scope(context.cfg.trainer.distribution) as replicas:
        built = _build_and_compile(context, prepared, replicas)
        steps.restore(context, prepared, built)
        steps.warn_if_short_of_room(context, built)
        fitted = steps.fit(context, prepared, built)
        tested = steps.evaluate(context, prepared, built, fitted)
    metrics = steps.metrics_of(context, prepared, built, fitted, tested)
    record(context, prepared, built, fitted, tested, metrics)
    return metrics


def _build_and_compile(context: RunContext, prepared: Prepared, replicas: int) -> Built:
    """Choose the precision and XLA setting (measuring them where the config leaves them to the machine),
    build and compile the network in it behind its augmentation, and record the setup. A later seed of a
    configuration this process has set up takes that set-up, reset to its own fresh build (``shared_setup``)."""
    from resnet_lab.training import shared_setup
    from resnet_lab.training.build import Recipe

    cfg, trainer, splits = context.cfg, context.cfg.trainer, prepared.splits
    batches = math.ceil(len(splits.y_train) / trainer.batch_size)
    steps_per_epoch = min(batches, trainer.steps_per_epoch or batches)
    recipe = Recipe.of(cfg, context.spec, splits.image_shape, splits.num_classes, steps_per_epoch, splits=splits)
    refused = shared_setup.refusal(cfg, context.resumed)
    key = shared_setup.key_of(cfg, recipe)
    shared = None if refused else shared_setup.take(key, cfg.seed, trainer.deterministic)
    if shared is not None:
        built, decision = shared.built, shared.decision
        log.info("set-up shared with an earlier seed of this config in this process: its model, reset to what a "
                 "fresh build from seed %d holds", cfg.seed)
    else:
        if refused:
            log.debug("set-up not shared: %s", refused)
        built, decision = _choose_and_build(context, prepared, recipe, batches)
        if not refused:
            shared_setup.keep(key, built, decision.reused(), built.draws)
    log.info("%s", decision.log_line())
    log.info("model %s: depth %d, %s parameters, %.3f GFLOPs per image%s",
             built.report.name, built.report.depth, f"{built.report.params_total:,}", built.report.flops / 1e9,
             f", {replicas} replicas" if replicas > 1 else "")
    log_setup_once(context, prepared, built, decision)
    return built


def _choose_and_build(context: RunContext, prepared: Prepared, recipe: Any, batches: int) -> Tuple[Built, Any]:
    """The setting's decision and the model built in it, analysed once (not each candidate a probe builds)."""
    from resnet_lab.autotune.probe import choose, step_signature
    from resnet_lab.model.analysis import analyze

    cfg, trainer, splits = context.cfg, context.cfg.trainer, prepared.splits
    steps_per_epoch = recipe.steps_per_epoch
    epochs_left = trainer.epochs - (prepared.state.epochs_done if prepared.state is not None else 0)

    def build(setting: Setting) -> Built:
        network, model, draws = recipe.build(setting.precision, setting.jit_compile)
        return Built(network, None, model, setting, steps_per_epoch, capped=steps_per_epoch < batches, draws=draws)

    signature = step_signature(cfg, splits.image_shape, splits.num_classes)
    outcome = choose(trainer, signature, build, lambda built: built.model, splits.x_train, splits.y_train, cfg.seed,
                     steps_per_epoch * epochs_left, resumed=_resumed_setting(context),
                     distributed=trainer.distribution != "none", recipe=recipe)
    built = dataclasses.replace(outcome.built, report=analyze(outcome.built.network, spec=context.spec))
    return built, outcome.decision


def _resumed_setting(context: RunContext) -> Optional[Setting]:
    """The setting a resumed run started with (its tags), so that its checkpoint loads as it was saved."""
    tags = resumed_tags(context)
    if "precision" not in tags or "jit_compile" not in tags:
        return None
    return Setting(tags["precision"], tags["jit_compile"] == "True")
