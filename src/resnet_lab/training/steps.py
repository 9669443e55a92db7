"""The steps of a training run after its model is built: data, resuming, fitting, testing and the final metrics.

Each step takes the run's context and what the earlier steps made, and returns what it made, so that ``train.py``
reads as the list of them.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from resnet_lab import tracking
from resnet_lab.training.tracked_run import RunContext

log = logging.getLogger(__name__)


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
    setting: Any  # the precision and XLA setting it trains with (``autotune.settings.Setting``)
    steps_per_epoch: int
    capped: bool  # fewer steps than batches: each epoch goes on where the last one stopped
    draws: Any = None  # what its build drew from the seeded generators (``reseed.BuildDraws``)


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


def prepare(context: RunContext) -> Prepared:
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


def restore(context: RunContext, prepared: Prepared, built: Built) -> None:
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


def warn_if_short_of_room(context: RunContext, built: Built) -> None:
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


def fit(context: RunContext, prepared: Prepared, built: Built) -> Fitted:
    """Train the epochs still to do (none after an early stop), checkpointing and logging each."""
    from resnet_lab.data.feeding import training_feed
    from resnet_lab.training.callbacks import EpochLogger, NonFiniteLossGuard
    from resnet_lab.training.checkpoints import Checkpointer
    from resnet_lab.training.pruning import trial_reporters

    cfg, trainer, splits = context.cfg, context.cfg.trainer, prepared.splits
    checkpointer = Checkpointer(context.checkpoint_dir, trainer.monitor, trainer.early_stopping_patience,
                                prepared.state)
    epoch_logger = EpochLogger(context.run, checkpointer,
                               validation(splits.x_val, splits.y_val, _inference_batch(trainer, splits)))
    done = checkpointer.state.epochs_done
    started = time.perf_counter()
    if done < trainer.epochs and not checkpointer.state.stopped_early:
        with tracking.system_metrics(context.run, context.uri, cfg.tracking.system_metrics):
            built.model.fit(
                **training_feed(splits.x_train, splits.y_train, trainer.batch_size, cfg.seed, repeat=built.capped),
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


def evaluate(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted) -> Tested:
    """Test the best checkpoint (with ``trainer.restore_best``) or the last weights on the test split."""
    from resnet_lab.training.checkpoints import load_variables

    trainer, splits, state = context.cfg.trainer, prepared.splits, fitted.checkpointer.state
    if trainer.restore_best and state.best is not None:
        load_variables(context.checkpoint_dir / state.best, built.model.weights)
        log.info("testing the best checkpoint: epoch %d, %s %.4f", state.best_epoch, trainer.monitor,
                 state.best_value)
    return Tested(*_predicted(built.model, splits.x_test, splits.y_test, _inference_batch(trainer, splits)))


def validation(x: Any, y: Any, batch_size: int) -> Callable[[Any], Dict[str, float]]:
    """What ``EpochLogger`` validates each epoch with: the validation split predicted as the test split is."""
    def validate(model: Any) -> Dict[str, float]:
        loss, accuracy, _ = _predicted(model, x, y, batch_size)
        return {"val_loss": loss, "val_accuracy": accuracy}

    return validate


def _inference_batch(trainer: Any, splits: Any) -> int:
    """Validation and testing predict in one batch size, so that the predict function is traced once."""
    from resnet_lab.data.feeding import inference_batch_size

    return inference_batch_size(trainer.batch_size, len(splits.y_val))


def _predicted(model: Any, x: Any, y: Any, batch_size: int) -> Tuple[float, float, Any]:
    """The loss and accuracy Keras' ``evaluate`` reports for ``(x, y)``, and the logits, from one prediction pass.
    Validation and testing share the one predict function, traced once (its batches are all of one shape), and no
    test function is traced beside it: for a ResNet-56 each trace takes over a second."""
    from resnet_lab.data.feeding import predict_in_full_batches
    from resnet_lab.training.evaluation import loss_and_accuracy

    logits = predict_in_full_batches(model, x, batch_size)
    return (*loss_and_accuracy(model, y, logits), logits)


def metrics_of(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted,
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


def steady_images_per_s(epoch_train_seconds: Sequence[float], images_per_epoch: int) -> float:
    """Training images per second over the epochs after the first, which also traces and compiles
    (over that first epoch when it is the only one); validation never counts."""
    steady = list(epoch_train_seconds[1:]) or list(epoch_train_seconds)
    return images_per_epoch * len(steady) / sum(steady)


def _verbosity(verbose: Optional[int]) -> int:
    """A progress bar in a terminal; one line per epoch in logs and CI."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _log_unlogged_epochs(run: tracking.Run, history: List[Dict[str, float]]) -> None:
    """Epochs the checkpoint holds but the killed process never logged: log them, each exactly once."""
    logged = tracking.logged_steps(run, "loss")
    for epoch, record in enumerate(history, start=1):
        if epoch not in logged:
            run.log_metrics(record, step=epoch)
