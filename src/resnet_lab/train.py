"""train(cfg) -> metrics: a plain function, no Hydra inside, so tests and the CLI share it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.autotune.settings import Setting
from resnet_lab.config.validation import validate_train_config
from resnet_lab.errors import TrainingDiverged
from resnet_lab.model.spec import ModelConfig
from resnet_lab.runtime.startup_noise import import_backend_quietly
from resnet_lab.tracking.identity import config_hash, group_hash
from resnet_lab.tracking.naming import group_name

log = logging.getLogger(__name__)

CHECKPOINT_FOLDER = "checkpoints"  # inside the run's output folder


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every step of a run needs to know: its config, where it keeps things, and what it logs to."""

    cfg: DictConfig
    spec: ModelConfig  # cfg.model as the typed spec the builder takes
    run: Optional[tracking.Run]  # None without tracking
    checkpoint_dir: Path
    output_dir: Optional[Path] = None  # None: nothing outlives the run
    overrides: Sequence[str] = ()
    resumed: bool = False  # continues an unfinished run from its last checkpoint
    uri: Optional[str] = None  # the tracking store the run is in
    in_sweep: bool = False  # a job of a multirun: the sweep, not each job, says where to look
    resume_from: Any = None  # the verified checkpoint state a resumed run continues from (None: its first epoch)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The seeded run's data and the checkpoint state it resumes from (None when new)."""

    splits: Any
    state: Any


@dataclasses.dataclass(frozen=True)
class Built:
    """The network, its analysis and the compiled model that trains it (the network behind augmentation)."""

    network: Any
    report: Any
    model: Any
    setting: Setting  # the precision and XLA setting it trains with
    steps_per_epoch: int
    capped: bool  # fewer steps than batches: each epoch goes on where the last one stopped


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What training left: the checkpointer (and so the history), the epoch timings, the time it took."""

    checkpointer: Any
    epoch_logger: Any
    train_seconds: float

    @property
    def history(self) -> List[Dict[str, float]]:
        return self.checkpointer.state.history


@dataclasses.dataclass(frozen=True)
class Tested:
    """The test split's loss and accuracy, and the logits predicted for it."""

    loss: Any
    accuracy: Any
    logits: Any


def train(
    cfg: DictConfig,
    output_dir: Optional[Path] = None,
    overrides: Sequence[str] = (),
    sweep_dir: Optional[str] = None,
    run_name: Optional[str] = None,
    tags: Optional[Dict[str, Any]] = None,
) -> Dict[str, float]:
    """Load data, build, fit, evaluate on the test split and log it all; returns the final metrics.

    ``output_dir`` receives the checkpoints and the trained model (a temporary folder when None, and then
    the run cannot be resumed); ``overrides`` are the command-line overrides kept with the run;
    ``sweep_dir`` links the run to its multirun parent; ``run_name`` (unless ``tracking.run_name`` is set)
    and ``tags`` are given to the MLflow run. With ``trainer.resume=true`` the newest unfinished run of the
    same config continues from its last checkpoint, in the same MLflow run.
    """
    validate_train_config(cfg)  # before any run exists: a typo must not leave a FAILED run behind
    import_backend_quietly()
    spec = OmegaConf.to_object(cfg.model)
    with contextlib.ExitStack() as stack:
        own_dir = output_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        untracked = RunContext(cfg, spec, None, checkpoint_dir=own_dir / CHECKPOINT_FOLDER, output_dir=output_dir,
                               overrides=overrides, in_sweep=sweep_dir is not None)
        context = stack.enter_context(_tracked(untracked, sweep_dir, run_name, tags))
        metrics = _run(context)
    return metrics


def _tracked(untracked: RunContext, sweep_dir: Optional[str], run_name: Optional[str],
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


def _run(context: RunContext) -> Dict[str, float]:
    """One training run, step by step; the model's steps run in the distribution scope."""
    from resnet_lab.runtime.backend import distribution_scope

    prepared = _prepare(context)
    with distribution_scope(context.cfg.trainer.distribution) as replicas:
        built = _build_and_compile(context, prepared, replicas)
        _restore(context, prepared, built)
        _warn_if_short_of_room(context, built)
        fitted = _fit(context, prepared, built)
        tested = _evaluate(context, prepared, built, fitted)
    metrics = _metrics(context, prepared, built, fitted, tested)
    _record(context, prepared, built, fitted, tested, metrics)
    return metrics


def _prepare(context: RunContext) -> Prepared:
    """Seed, load the data and read the checkpoint state to resume from."""
    import keras

    from resnet_lab.data import load_splits
    from resnet_lab.runtime.backend import seed_everything

    cfg = context.cfg
    seed_everything(cfg.seed, cfg.trainer.deterministic)  # TensorFlow-free on other backends
    splits = load_splits(cfg.data)
    log.info("data %s: %s images of %s, Keras backend %s", cfg.data.name, splits.sizes(), list(splits.image_shape),
             keras.backend.backend())
    return Prepared(splits, context.resume_from if context.resumed else None)


def _build_and_compile(context: RunContext, prepared: Prepared, replicas: int) -> Built:
    """Choose the precision and XLA setting (measuring them where the config leaves them to the machine),
    build and compile the network in it behind its augmentation, and record the setup."""
    from resnet_lab.autotune.probe import choose, step_signature
    from resnet_lab.model.analysis import analyze
    from resnet_lab.training.build import Recipe

    cfg, trainer, splits = context.cfg, context.cfg.trainer, prepared.splits
    batches = math.ceil(len(splits.y_train) / trainer.batch_size)
    steps_per_epoch = min(batches, trainer.steps_per_epoch or batches)
    epochs_left = trainer.epochs - (prepared.state.epochs_done if prepared.state is not None else 0)
    recipe = Recipe.of(cfg, context.spec, splits.image_shape, splits.num_classes, steps_per_epoch, splits=splits)

    def build(setting: Setting) -> Built:
        network, model = recipe.build(setting.precision, setting.jit_compile)
        return Built(network, analyze(network, spec=context.spec), model, setting, steps_per_epoch,
                     capped=steps_per_epoch < batches)

    signature = step_signature(cfg, splits.image_shape, splits.num_classes)
    outcome = choose(trainer, signature, build, lambda built: built.model, splits.x_train, splits.y_train, cfg.seed,
                     steps_per_epoch * epochs_left, resumed=_resumed_setting(context),
                     distributed=trainer.distribution != "none", recipe=recipe)
    built = outcome.built
    log.info("%s", outcome.decision.log_line())
    log.info("model %s: depth %d, %s parameters, %.3f GFLOPs per image%s",
             built.report.name, built.report.depth, f"{built.report.params_total:,}", built.report.flops / 1e9,
             f", {replicas} replicas" if replicas > 1 else "")
    _log_setup_once(context, prepared, built, outcome.decision)
    return built


def _resumed_setting(context: RunContext) -> Optional[Setting]:
    """The setting a resumed run started with (its tags), so that its checkpoint loads as it was saved."""
    if not context.resumed or context.run is None:
        return None
    tags = context.run.client.get_run(context.run.run_id).data.tags
    if "precision" not in tags or "jit_compile" not in tags:
        return None
    return Setting(tags["precision"], tags["jit_compile"] == "True")


def _log_setup_once(context: RunContext, prepared: Prepared, built: Built, decision: Any) -> None:
    """The setup goes to the run before training, once: MLflow refuses to change a param on resume."""
    import keras

    from resnet_lab.tracking.dataset_logging import log_datasets

    run = context.run
    if run is None or (context.resumed and run.client.get_run(run.run_id).data.params):
        return
    _log_setup(run, context.cfg, built.report, context.overrides, built.network)
    run.set_tags({**decision.tags(), "keras_backend": keras.backend.backend()})
    log_datasets(run, prepared.splits, context.cfg.data)


def _restore(context: RunContext, prepared: Prepared, built: Built) -> None:
    """A resumed run continues from its last checkpoint, and logs the epochs the stopped process did not."""
    from resnet_lab.training.checkpoints import load_variables, training_variables

    state, model = prepared.state, built.model
    if state is not None and state.last is not None:
        if not model.optimizer.built:  # compile_model builds it on TensorFlow
            model.optimizer.build(model.trainable_variables)
        load_variables(context.checkpoint_dir / state.last, training_variables(model))  # the step count included
        log.info("resuming after epoch %d of %d", state.epochs_done, context.cfg.trainer.epochs)
    if context.run is not None and state is not None:
        _log_unlogged_epochs(context.run, state.history)


def _warn_if_short_of_room(context: RunContext, built: Built) -> None:
    """Say before training, not at its first checkpoint, that the output folder's disk is too full for one."""
    import shutil

    from resnet_lab.training.checkpoints import room_needed

    folder = context.checkpoint_dir
    folder.mkdir(parents=True, exist_ok=True)
    if not built.model.optimizer.built:  # its variables are part of each checkpoint
        built.model.optimizer.build(built.model.trainable_variables)
    needed, free = room_needed(built.model), shutil.disk_usage(folder).free
    if free < needed:
        log.warning("only %s bytes are free in %s; one epoch's checkpoints need about %s (the parameters, the "
                    "optimizer state and the previous epoch kept): training goes on, but may stop at a full disk",
                    f"{free:,}", folder, f"{needed:,}")


def _fit(context: RunContext, prepared: Prepared, built: Built) -> Fitted:
    """Train the epochs still to do (none after an early stop), checkpointing and logging each."""
    from resnet_lab.data.feeding import training_feed, validation
    from resnet_lab.training.callbacks import EpochLogger, NonFiniteLossGuard
    from resnet_lab.training.checkpoints import Checkpointer
    from resnet_lab.training.pruning import trial_reporters

    cfg, trainer, splits = context.cfg, context.cfg.trainer, prepared.splits
    checkpointer = Checkpointer(context.checkpoint_dir, trainer.monitor, trainer.early_stopping_patience,
                                prepared.state)
    epoch_logger = EpochLogger(context.run, checkpointer)
    done = checkpointer.state.epochs_done
    started = time.perf_counter()
    if done < trainer.epochs and not checkpointer.state.stopped_early:
        with tracking.system_metrics(context.run, context.uri, cfg.tracking.system_metrics):
            built.model.fit(
                **training_feed(splits.x_train, splits.y_train, trainer.batch_size, cfg.seed, repeat=built.capped),
                validation_data=validation(splits.x_val, splits.y_val, trainer.batch_size),
                epochs=trainer.epochs,
                initial_epoch=done,
                steps_per_epoch=built.steps_per_epoch if built.capped else None,
                callbacks=[NonFiniteLossGuard(), epoch_logger, *trial_reporters(cfg, context.run)],
                verbose=_verbosity(trainer.verbose),
            )
    train_seconds = time.perf_counter() - started
    if checkpointer.state.stopped_early:
        log.info("early stop after epoch %d: no better %s since epoch %d", checkpointer.state.epochs_done,
                 trainer.monitor, checkpointer.state.best_epoch)
    return Fitted(checkpointer, epoch_logger, train_seconds)


def _evaluate(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted) -> Tested:
    """Test the best checkpoint (with ``trainer.restore_best``) or the last weights on the test split."""
    from resnet_lab.data.feeding import feed
    from resnet_lab.training.checkpoints import load_variables

    trainer, splits, state = context.cfg.trainer, prepared.splits, fitted.checkpointer.state
    if trainer.restore_best and state.best is not None:
        load_variables(context.checkpoint_dir / state.best, built.model.weights)
        log.info("testing the best checkpoint: epoch %d, %s %.4f", state.best_epoch, trainer.monitor,
                 state.best_value)
    test_loss, test_accuracy = built.model.evaluate(**feed(splits.x_test, splits.y_test, trainer.batch_size),
                                                    verbose=0)
    logits = built.model.predict(**feed(splits.x_test, None, trainer.batch_size), verbose=0)
    return Tested(test_loss, test_accuracy, logits)


def _metrics(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted,
             tested: Tested) -> Dict[str, float]:
    """The last epoch's metrics, the best, the test results and the training speed."""
    history = fitted.history
    metrics = {
        **history[-1],
        "best_val_accuracy": max(r.get("val_accuracy", float("nan")) for r in history),
        "best_epoch": float(fitted.checkpointer.state.best_epoch),
        "epochs_done": float(len(history)),
        "test_loss": float(tested.loss),
        "test_accuracy": float(tested.accuracy),
        "train_seconds": fitted.train_seconds,
    }
    if fitted.epoch_logger.train_seconds:
        batch_size = context.cfg.trainer.batch_size
        images_per_epoch = min(len(prepared.splits.y_train), built.steps_per_epoch * batch_size)
        metrics["train_images_per_s"] = steady_images_per_s(fitted.epoch_logger.train_seconds, images_per_epoch)
    return metrics


def _record(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted, tested: Tested,
            metrics: Dict[str, float]) -> None:
    """Report the results: to the run (metrics, evaluation, model), or as a model file without tracking."""
    log.info("test accuracy %.4f, test loss %.4f (%.1f s of training)", tested.accuracy, tested.loss,
             fitted.train_seconds)
    run, output_dir, history = context.run, context.output_dir, fitted.history
    if run is not None:
        final = {k: v for k, v in metrics.items() if k not in history[-1]}
        with _model_of(context, step=len(history)) as model_id:  # None without tracking.log_model
            run.log_metrics(final, step=len(history), model_id=model_id)
            _log_evaluation(run, context.cfg.data, prepared.splits, tested.logits.argmax(axis=-1), history)
            if model_id is not None:
                from resnet_lab.tracking.model_logging import upload_network

                upload_network(run, model_id, built.network, prepared.splits.x_test, keep_in=output_dir)
        if model_id is not None:
            _register(context, model_id)
    elif output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        built.network.save(output_dir / "model.keras")
    if not context.in_sweep:
        _say_where_it_went(context)


def _say_where_it_went(context: RunContext) -> None:
    """The last lines of a run: where its checkpoints and model are, and how to see it in the MLflow UI."""
    from resnet_lab.tracking.ui_view import pointer_lines

    if context.output_dir is not None:
        log.info("checkpoints in %s", context.checkpoint_dir)
    if context.run is None:
        if context.output_dir is not None:
            log.info("model in %s", context.output_dir / "model.keras")
        return
    run_id = context.run.run_id
    if context.cfg.tracking.log_model:
        local = f"; {context.output_dir / 'model.keras'} for Keras" if context.output_dir is not None else ""
        log.info("model: runs:/%s/model (mlflow.pyfunc.load_model, mlflow models serve; the experiment's "
                 "Models page)%s", run_id, local)
    experiment = context.run.client.get_run(run_id).info.experiment_id
    for line in pointer_lines(context.uri, experiment, run_id):
        log.info("%s", line)


def steady_images_per_s(epoch_train_seconds: Sequence[float], images_per_epoch: int) -> float:
    """Training images per second over the epochs after the first, which also traces and compiles
    (over that first epoch when it is the only one); validation never counts."""
    steady = list(epoch_train_seconds[1:]) or list(epoch_train_seconds)
    return images_per_epoch * len(steady) / sum(steady)


def _log_unlogged_epochs(run: tracking.Run, history: List[Dict[str, float]]) -> None:
    """Epochs the checkpoint holds but the killed process never logged: log them, each exactly once."""
    logged = tracking.logged_steps(run, "loss")
    for epoch, record in enumerate(history, start=1):
        if epoch not in logged:
            run.log_metrics(record, step=epoch)


def _log_setup(run: tracking.Run, cfg: DictConfig, report: Any, overrides: Sequence[str], model: Any) -> None:
    """Everything known before training starts, so that a run that fails is still explained."""
    resolved = tracking.public_config(cfg)  # credentials in URIs are never recorded
    resolved["model"].pop("reference", None)  # the preset's published facts, not this run's: see arch.*
    arch = {"depth": report.depth, "params_total": report.params_total,
            "params_trainable": report.params_trainable, "flops": report.flops,
            "activation_bytes": report.activation_bytes}
    run.log_params({**tracking.flatten(resolved), **{f"arch.{k}": v for k, v in arch.items()}})
    run.set_tags({
        **arch,
        "block": report.block,
        "stem": report.stem,
        "mlflow.source.git.commit": tracking.git_commit(tracking.launch_dir()),
        "mlflow.note.content": f"{report.name}: depth {report.depth}, {report.params_total:,} parameters",
    })
    run.log_text(OmegaConf.to_yaml(resolved), "config.yaml")
    run.log_text("\n".join(tracking.redact_overrides(overrides)) + "\n", "overrides.txt")
    lines: List[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=120)
    run.log_text(report.to_text() + "\n\n" + "\n".join(lines) + "\n", "model_summary.txt")


def _log_evaluation(run: tracking.Run, data: Any, splits: Any, predicted: Any,
                    history: List[Dict[str, float]]) -> None:
    """Each test image's outcome, the confusion matrix and per-class accuracy on the test split, and the
    training curves."""
    from resnet_lab.tracking.outcomes import log_outcomes, test_split_identity
    from resnet_lab.training.evaluation import confusion_matrix, per_class_rows, plot_confusion, plot_curves, to_csv

    log_outcomes(run, splits.y_test, predicted, test_split_identity(data, splits.x_test, splits.y_test))

    matrix = confusion_matrix(splits.y_test, predicted, splits.num_classes)
    names = splits.class_names or [str(i) for i in range(splits.num_classes)]
    run.log_text(to_csv(per_class_rows(matrix, names)), "evaluation/per_class_accuracy.csv")
    run.log_text(to_csv([{"true": names[i], **{p: int(matrix[i, j]) for j, p in enumerate(names)}}
                         for i in range(len(names))]), "evaluation/confusion_matrix.csv")
    with tempfile.TemporaryDirectory() as tmp:
        plot_confusion(matrix, names, Path(tmp) / "confusion_matrix.png")
        plot_curves(history, Path(tmp) / "training_curves.png")
        run.log_artifact(Path(tmp) / "confusion_matrix.png", "evaluation")
        run.log_artifact(Path(tmp) / "training_curves.png", "evaluation")


@contextlib.contextmanager
def _model_of(context: RunContext, step: int) -> Iterator[Optional[str]]:
    """The run's LoggedModel (READY once the block has uploaded it), or None when ``tracking.log_model`` is off."""
    if not context.cfg.tracking.log_model:
        yield None
        return
    from resnet_lab.tracking.model_logging import logged_model, model_params

    run = context.run
    with logged_model(run, model_params(run.client.get_run(run.run_id).data.params), step) as model_id:
        yield model_id


def _register(context: RunContext, model_id: str) -> None:
    """A single run's model becomes a new version of ``tracking.register_model``; a sweep registers only its
    champion (sweep.py), so that the registry is not a copy of the runs table."""
    from resnet_lab.tracking.model_logging import register

    name = context.cfg.tracking.register_model
    if name and not context.in_sweep:
        version = register(context.run.client, model_id, context.run.run_id, name)
        log.info("registered as version %s of model %r", version.version, name)


def _verbosity(verbose: Optional[int]) -> int:
    """A progress bar in a terminal; one line per epoch in logs and CI."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2
