"""train(cfg) -> metrics: a plain function, no Hydra inside, so tests and the CLI share it."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.identity import config_hash
from resnet_lab.validation import validate_train_config

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig,
    output_dir: Optional[Path] = None,
    overrides: Sequence[str] = (),
    sweep_dir: Optional[str] = None,
) -> Dict[str, float]:
    """Load data, build, fit, evaluate on the test split and log it all; returns the final metrics.

    ``output_dir`` receives the trained model (a temporary folder when None); ``overrides`` are the
    command-line overrides kept with the run; ``sweep_dir`` links the run to its multirun parent.
    """
    validate_train_config(cfg)  # before any run exists: a typo must not leave a FAILED run behind
    spec = OmegaConf.to_object(cfg.model)
    if not cfg.tracking.enabled:
        return _run(cfg, spec, None, output_dir, overrides)

    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    parent = tracking.find_sweep_parent(uri, cfg.tracking.experiment, sweep_dir) if sweep_dir else None
    tags = {tracking.TAG_ROLE: "train", "preset": cfg.model.name, "data": cfg.data.name,
            tracking.TAG_CONFIG_HASH: config_hash(cfg)}
    with tracking.start_run(uri, cfg.tracking.experiment, cfg.tracking.run_name or cfg.model.name,
                            tags=tags, parent_run_id=parent) as run:
        log.info("MLflow run %s in %s (experiment %r)", run.run_id, uri, cfg.tracking.experiment)
        return _run(cfg, spec, run, output_dir, overrides)


def _run(cfg: DictConfig, spec: Any, run: Optional[tracking.Run], output_dir: Optional[Path],
         overrides: Sequence[str]) -> Dict[str, float]:
    import keras

    from resnet_lab.callbacks import EpochLogger
    from resnet_lab.data import load_splits
    from resnet_lab.model.analysis import analyze
    from resnet_lab.model.builder import build_model
    from resnet_lab.optim import build_optimizer, build_schedule
    from resnet_lab.runtime import resolve_precision, seed_everything

    seed_everything(cfg.seed)  # keras.utils.set_random_seed would import TensorFlow on any backend
    splits = load_splits(cfg.data)
    log.info("data %s: %s images of %s", cfg.data.name, splits.sizes(), list(splits.image_shape))

    precision = resolve_precision(cfg.trainer.precision)  # "auto" -> what this machine runs fastest
    log.info("precision %s (trainer.precision=%s), Keras backend %s", precision, cfg.trainer.precision,
             keras.backend.backend())
    model = build_model(spec, splits.image_shape, splits.num_classes, precision=precision)
    report = analyze(model, stem=spec.stem.name, block=spec.block.type)
    log.info("model %s: depth %d, %s parameters, %.3f GFLOPs per image",
             report.name, report.depth, f"{report.params_total:,}", report.flops / 1e9)

    if run is not None:
        _log_setup(run, cfg, report, overrides, model)
        run.set_tags({"precision": precision, "keras_backend": keras.backend.backend()})

    batches = math.ceil(len(splits.y_train) / cfg.trainer.batch_size)
    steps_per_epoch = min(batches, cfg.trainer.steps_per_epoch or batches)
    schedule = build_schedule(cfg.schedule, cfg.optimizer.learning_rate, steps_per_epoch, cfg.trainer.epochs)
    model.compile(
        optimizer=build_optimizer(cfg.optimizer, schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile="auto" if cfg.trainer.jit_compile is None else cfg.trainer.jit_compile,
    )
    epoch_logger = EpochLogger(run)
    started = time.perf_counter()
    history = model.fit(
        splits.x_train, splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        batch_size=cfg.trainer.batch_size,
        epochs=cfg.trainer.epochs,
        steps_per_epoch=cfg.trainer.steps_per_epoch and steps_per_epoch,
        shuffle=True,
        callbacks=[epoch_logger],
        verbose=_verbosity(cfg.trainer.verbose),
    )
    train_seconds = time.perf_counter() - started

    test_loss, test_accuracy = model.evaluate(splits.x_test, splits.y_test, batch_size=cfg.trainer.batch_size,
                                              verbose=0)
    final = {key: float(values[-1]) for key, values in history.history.items()}
    metrics = {
        **final,
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "train_seconds": train_seconds,
        "train_images_per_s": epoch_logger.epochs_done * steps_per_epoch * cfg.trainer.batch_size / train_seconds,
    }
    log.info("test accuracy %.4f, test loss %.4f (%.1f s of training)", test_accuracy, test_loss, train_seconds)
    if run is not None:
        run.log_metrics({k: v for k, v in metrics.items() if k not in final}, step=cfg.trainer.epochs)
        if cfg.tracking.log_model:
            _log_model(run, model, output_dir)
    elif output_dir is not None:
        model.save(output_dir / "model.keras")
    return metrics


def _log_setup(run: tracking.Run, cfg: DictConfig, report: Any, overrides: Sequence[str], model: Any) -> None:
    """Everything known before training starts, so that a run that fails is still explained."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    arch = {"depth": report.depth, "params_total": report.params_total,
            "params_trainable": report.params_trainable, "flops": report.flops}
    run.log_params({**tracking.flatten(resolved), **{f"arch.{k}": v for k, v in arch.items()}})
    run.set_tags({
        **arch,
        "block": report.block,
        "stem": report.stem,
        "mlflow.source.git.commit": tracking.git_commit(tracking.launch_dir()),
        "mlflow.note.content": f"{report.name}: depth {report.depth}, {report.params_total:,} parameters",
    })
    run.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    run.log_text("\n".join(overrides) + "\n", "overrides.txt")
    lines: List[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=120)
    run.log_text(report.to_text() + "\n\n" + "\n".join(lines) + "\n", "model_summary.txt")


def _log_model(run: tracking.Run, model: Any, output_dir: Optional[Path]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = (output_dir or Path(tmp)) / "model.keras"
        model.save(path)
        run.log_artifact(path, "model")


def _verbosity(verbose: Optional[int]) -> int:
    """A progress bar in a terminal; one line per epoch in logs and CI."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2
