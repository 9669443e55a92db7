"""What a training run records in MLflow besides its epochs: its setup before training (config, architecture,
data sets), then its results (final metrics, evaluation, the model and its registration), and where it all went."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import weakref
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.training.steps import Built, Fitted, Prepared, Tested
from resnet_lab.training.tracked_run import RunContext

log = logging.getLogger(__name__)


def log_setup_once(context: RunContext, prepared: Prepared, built: Built, decision: Any) -> None:
    """The setup goes to the run before training, once: MLflow refuses to change a param on resume."""
    import keras

    from resnet_lab.tracking.dataset_logging import log_datasets

    run = context.run
    if run is None or (context.resumed and run.client.get_run(run.run_id).data.params):
        return
    _log_setup(run, context.cfg, built.report, context.overrides, built.network)
    run.set_tags({**decision.tags(), "keras_backend": keras.backend.backend()})
    log_datasets(run, prepared.splits, context.cfg.data)


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
    run.log_text(report.to_text() + "\n\n" + _summary_of(model) + "\n", "model_summary.txt")


_summaries: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def _summary_of(model: Any) -> str:
    """Keras' summary of ``model``, written once per model: the later seeds that share it (``shared_setup``) have
    the same layers, shapes and counts, and writing it takes a quarter of a second for a ResNet-56."""
    if model not in _summaries:
        lines: List[str] = []
        model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=120)
        _summaries[model] = "\n".join(lines)
    return _summaries[model]


def record(context: RunContext, prepared: Prepared, built: Built, fitted: Fitted, tested: Tested,
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

                upload_network(run, model_id, built.network, prepared.splits.x_test, keep_in=output_dir,
                               example_logits=tested.logits)
        if model_id is not None:
            _register(context, model_id)
    elif output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        built.network.save(output_dir / "model.keras")
    if not context.in_sweep:
        _say_where_it_went(context)


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
    champion (sweeps/parent.py), so that the registry is not a copy of the runs table."""
    from resnet_lab.tracking.model_logging import register

    name = context.cfg.tracking.register_model
    if name and not context.in_sweep:
        version = register(context.run.client, model_id, context.run.run_id, name)
        log.info("registered as version %s of model %r", version.version, name)


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
