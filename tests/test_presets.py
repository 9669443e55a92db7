"""Every preset in conf/model/ composes, builds, and reproduces its reference parameter count."""

from __future__ import annotations

import re

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import MODEL_PRESETS, compose_config
from resnet_lab.model.analysis import analyze
from resnet_lab.model.builder import build_model
from resnet_lab.validation import validate_model


def test_the_presets_the_project_promises_exist():
    promised = {"seed_resnet18", "seed_resnet34", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56", "cifar_resnet110"}
    assert promised <= set(MODEL_PRESETS)


@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_preset_matches_its_reference(preset):
    spec = OmegaConf.to_object(compose_config("describe", [f"model={preset}"]).model)
    ref = spec.reference
    assert ref is not None, f"{preset} must state the reference parameter count it reproduces"
    validate_model(spec, ref.input_shape, ref.num_classes)

    model = build_model(spec, ref.input_shape, ref.num_classes)
    report = analyze(model)
    counted = report.params_trainable if ref.count == "trainable" else report.params_total
    assert counted == ref.params, f"{preset}: {counted:,} parameters, reference {ref.params:,} ({ref.source})"
    assert report.output_shape == [ref.num_classes]
    assert model.name == preset

    # The depth in the name is the number of weighted layers on the main path.
    assert report.depth == int(re.search(r"(\d+)$", preset).group(1))


@pytest.mark.parametrize("preset", ["seed_resnet18", "seed_resnet34"])
def test_seed_presets_are_exactly_the_seed_network(preset):
    """Same weights in, same logits out, in inference and in training mode."""
    from resnet_lab.model.seed_subclassed import seed_resnet, weights_in_seed_order

    spec = OmegaConf.to_object(compose_config("describe", [f"model={preset}"]).model)
    ours = build_model(spec, (32, 32, 3), 10)
    theirs = seed_resnet(spec.layer_dims)
    assert ours.count_params() == theirs.count_params()

    mapped = weights_in_seed_order(ours)
    assert [tuple(w.shape) for w in mapped] == [tuple(w.shape) for w in theirs.weights]
    for dst, src in zip(mapped, theirs.weights):
        dst.assign(src)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), rtol=1e-5, atol=1e-5)


def test_seed_resnet18_costs_what_the_reference_figures_say():
    """../shared/reference/figures.md: about 1.1 GFLOP per 32x32 image forward (multiply-add = 2)."""
    spec = OmegaConf.to_object(compose_config("describe", ["model=seed_resnet18"]).model)
    report = analyze(build_model(spec, (32, 32, 3), 10))
    assert 1.0e9 < report.flops < 1.2e9
    assert [s.output_shape for s in report.stages] == [[30, 30, 64], [30, 30, 64], [15, 15, 128], [8, 8, 256],
                                                       [4, 4, 512]]
