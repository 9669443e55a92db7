"""train(cfg) -> metrics: a plain function, no Hydra inside, so tests and the CLI share it."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.errors import TrainingDiverged
from resnet_lab.identity import config_hash
from resnet_lab.validation import validate_train_config

log = logging.getLogger(__name__)

CHECKPOINT_FOLDER = "checkpoints"  # inside the run's output folder


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
    spec = OmegaConf.to_object(cfg.model)
    with contextlib.ExitStack() as stack:
        own_dir = output_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if not cfg.tracking.enabled:
            return _run(cfg, spec, None, own_dir / CHECKPOINT_FOLDER, output_dir, overrides, resumed=False)

        tracking.quiet_mlflow()
        uri = tracking.resolve_uri(cfg.tracking.uri)
        tracking.check_reachable(uri)  # a dead server fails here, in seconds, not after training
        identity = config_hash(cfg)
        previous = tracking.find_resumable_run(uri, cfg.tracking.experiment, identity) if cfg.trainer.resume else None
        if cfg.trainer.resume and previous is None:
            log.info("trainer.resume: no unfinished run of this config (hash %s) to resume; starting a new one",
                     identity)
        parent = tracking.find_sweep_parent(uri, cfg.tracking.experiment, sweep_dir) if sweep_dir else None
        tags = {tracking.TAG_ROLE: "train", "preset": cfg.model.name, "data": cfg.data.name,
                tracking.TAG_CONFIG_HASH: identity, **(tags or {})}
        with tracking.start_run(uri, cfg.tracking.experiment, cfg.tracking.run_name or run_name or cfg.model.name,
                                tags=tags, parent_run_id=parent,
                                resume_run_id=previous.info.run_id if previous else None) as run:
            if previous is not None:
                checkpoint_dir = Path(previous.data.tags[tracking.TAG_CHECKPOINT_DIR])
                log.info("resuming MLflow run %s from %s", run.run_id, checkpoint_dir)
            else:
                checkpoint_dir = (own_dir / CHECKPOINT_FOLDER).resolve()
                if output_dir is not None:  # a temporary folder vanishes: nothing to resume from
                    run.set_tags({tracking.TAG_CHECKPOINT_DIR: str(checkpoint_dir)})
                log.info("MLflow run %s in %s (experiment %r)", run.run_id, uri, cfg.tracking.experiment)
            try:
                return _run(cfg, spec, run, checkpoint_dir, output_dir, overrides, resumed=previous is not None)
            except TrainingDiverged as exc:
                run.set_tags({tracking.TAG_FAILED_EPOCH: exc.epoch})
                raise
    raise AssertionError("unreachable")  # pragma: no cover - the ExitStack block always returns or raises


def _run(cfg: DictConfig, spec: Any, run: Optional[tracking.Run], checkpoint_dir: Path,
         output_dir: Optional[Path], overrides: Sequence[str], resumed: bool) -> Dict[str, float]:
    import keras

    from resnet_lab.callbacks import EpochLogger, NonFiniteLossGuard
    from resnet_lab.checkpoints import Checkpointer, load_state, load_variables, training_variables
    from resnet_lab.data import load_splits
    from resnet_lab.data.augment import with_augmentation
    from resnet_lab.data.feeding import feed, training_feed, validation
    from resnet_lab.model.analysis import analyze
    from resnet_lab.model.builder import build_model
    from resnet_lab.optim import compile_model
    from resnet_lab.runtime import distribution_scope, resolve_jit_compile, resolve_precision, seed_everything

    trainer = cfg.trainer
    seed_everything(cfg.seed, trainer.deterministic)  # TensorFlow-free on other backends
    splits = load_splits(cfg.data)
    log.info("data %s: %s images of %s", cfg.data.name, splits.sizes(), list(splits.image_shape))
    state = load_state(checkpoint_dir) if resumed else None

    precision = resolve_precision(trainer.precision)  # "auto" -> what this machine runs fastest
    log.info("precision %s (trainer.precision=%s), Keras backend %s", precision, trainer.precision,
             keras.backend.backend())
    with distribution_scope(trainer.distribution) as replicas:
        network = build_model(spec, splits.image_shape, splits.num_classes, precision=precision)
        report = analyze(network, stem=spec.stem.name, block=spec.block.type)
        log.info("model %s: depth %d, %s parameters, %.3f GFLOPs per image%s",
                 report.name, report.depth, f"{report.params_total:,}", report.flops / 1e9,
                 f", {replicas} replicas" if replicas > 1 else "")
        jit_compile = resolve_jit_compile(trainer.jit_compile, report.flops, report.depth, trainer.deterministic)
        log.info("XLA %s (%s)", "on" if jit_compile else "off", "chosen for this model and machine"
                 if trainer.jit_compile is None else f"trainer.jit_compile={trainer.jit_compile}")
        if run is not None and not (resumed and run.client.get_run(run.run_id).data.params):
            _log_setup(run, cfg, report, overrides, network)  # once: MLflow refuses to change a param
            run.set_tags({"precision": precision, "jit_compile": jit_compile, "keras_backend": keras.backend.backend()})

        model = with_augmentation(network, cfg.data.augment)
        batches = math.ceil(len(splits.y_train) / trainer.batch_size)
        steps_per_epoch = min(batches, trainer.steps_per_epoch or batches)
        compile_model(model, cfg, splits.num_classes, steps_per_epoch, precision, jit_compile)
        if state is not None and state.last is not None:
            model.optimizer.build(model.trainable_variables)
            load_variables(checkpoint_dir / state.last, training_variables(model))  # the step count included
            log.info("resuming after epoch %d of %d", state.epochs_done, trainer.epochs)
        if run is not None and state is not None:
            _log_unlogged_epochs(run, state.history)

        checkpointer = Checkpointer(checkpoint_dir, trainer.monitor, trainer.early_stopping_patience, state)
        epoch_logger = EpochLogger(run, checkpointer)
        done = checkpointer.state.epochs_done
        started = time.perf_counter()
        if done < trainer.epochs and not checkpointer.state.stopped_early:
            capped = steps_per_epoch < batches  # then each epoch goes on where the last one stopped
            model.fit(
                **training_feed(splits.x_train, splits.y_train, trainer.batch_size, cfg.seed, repeat=capped),
                validation_data=validation(splits.x_val, splits.y_val, trainer.batch_size),
                epochs=trainer.epochs,
                initial_epoch=done,
                steps_per_epoch=steps_per_epoch if capped else None,
                callbacks=[NonFiniteLossGuard(), epoch_logger],
                verbose=_verbosity(trainer.verbose),
            )
        train_seconds = time.perf_counter() - started
        history = checkpointer.state.history
        if checkpointer.state.stopped_early:
            log.info("early stop after epoch %d: no better %s since epoch %d", checkpointer.state.epochs_done,
                     trainer.monitor, checkpointer.state.best_epoch)
        if trainer.restore_best and checkpointer.state.best is not None:
            load_variables(checkpoint_dir / checkpointer.state.best, model.weights)
            log.info("testing the best checkpoint: epoch %d, %s %.4f", checkpointer.state.best_epoch,
                     trainer.monitor, checkpointer.state.best_value)
        test_loss, test_accuracy = model.evaluate(**feed(splits.x_test, splits.y_test, trainer.batch_size),
                                                  verbose=0)
        logits = model.predict(**feed(splits.x_test, None, trainer.batch_size), verbose=0)

    final = dict(history[-1])
    metrics = {
        **final,
        "best_val_accuracy": max(r.get("val_accuracy", float("nan")) for r in history),
        "best_epoch": float(checkpointer.state.best_epoch),
        "epochs_done": float(len(history)),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "train_seconds": train_seconds,
    }
    if epoch_logger.train_seconds:
        images_per_epoch = min(len(splits.y_train), steps_per_epoch * trainer.batch_size)
        metrics["train_images_per_s"] = steady_images_per_s(epoch_logger.train_seconds, images_per_epoch)
    log.info("test accuracy %.4f, test loss %.4f (%.1f s of training)", test_accuracy, test_loss, train_seconds)
    if run is not None:
        run.log_metrics({k: v for k, v in metrics.items() if k not in final}, step=len(history))
        _log_evaluation(run, splits, logits.argmax(axis=-1), history)
        if cfg.tracking.log_model:
            _log_model(run, network, output_dir)
    elif output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        network.save(output_dir / "model.keras")
    return metrics


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


def _log_evaluation(run: tracking.Run, splits: Any, predicted: Any, history: List[Dict[str, float]]) -> None:
    """Confusion matrix and per-class accuracy on the test split, and the training curves."""
    from resnet_lab.evaluation import confusion_matrix, per_class_rows, plot_confusion, plot_curves, to_csv

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


def _log_model(run: tracking.Run, model: Any, output_dir: Optional[Path]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = (output_dir or Path(tmp)) / "model.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        run.log_artifact(path, "model")


def _verbosity(verbose: Optional[int]) -> int:
    """A progress bar in a terminal; one line per epoch in logs and CI."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2
