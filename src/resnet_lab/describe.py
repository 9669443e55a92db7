"""describe(cfg) -> ModelReport: build a model from config and the data set's metadata, load no data."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from resnet_lab.config.validation import validate_describe_config
from resnet_lab.model.analysis import ModelReport


def describe(cfg: DictConfig) -> ModelReport:
    from resnet_lab.model.analysis import analyze
    from resnet_lab.model.builder import build_model

    validate_describe_config(cfg)
    spec = OmegaConf.to_object(cfg.model)
    model = build_model(spec, cfg.data.image_shape, cfg.data.num_classes)
    report = analyze(model, spec=spec)
    if cfg.describe.save_model:
        path = Path(cfg.describe.save_model).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    if cfg.describe.plot:
        plot_architecture(model, Path(cfg.describe.plot).expanduser())
    return report


def plot_architecture(model, path: Path) -> bool:
    """Draw the model with Keras' plot_model; without pydot/Graphviz say so in one line, do not fail."""
    import sys

    import keras

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True, show_layer_names=True, dpi=72)
    except (ImportError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"note: describe.plot={str(path)!r} skipped: drawing needs pydot and Graphviz's `dot` "
              f"(pip install pydot; apt-get install graphviz): {reason}", file=sys.stderr)
        return False
    return True


def render(report: ModelReport, fmt: str) -> str:
    return report.to_json() if fmt == "json" else report.to_text()
