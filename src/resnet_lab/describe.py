"""describe(cfg) -> ModelReport: build a model from config and the data set's metadata, load no data."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from resnet_lab.model.analysis import ModelReport
from resnet_lab.validation import validate_describe_config


def describe(cfg: DictConfig) -> ModelReport:
    from resnet_lab.model.analysis import analyze
    from resnet_lab.model.builder import build_model

    validate_describe_config(cfg)
    spec = OmegaConf.to_object(cfg.model)
    model = build_model(spec, cfg.data.image_shape, cfg.data.num_classes)
    report = analyze(model, stem=spec.stem.name, block=spec.block.type)
    if cfg.describe.save_model:
        path = Path(cfg.describe.save_model).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return report


def render(report: ModelReport, fmt: str) -> str:
    return report.to_json() if fmt == "json" else report.to_text()
