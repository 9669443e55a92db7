"""Every preset in conf/model/ composes, builds, and reproduces its reference parameter count."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from helpers.configs import MODEL_PRESETS, model_spec

from resnet_lab.model.builder import build_model
from resnet_lab.model.checks import check_model
from resnet_lab.zoo import preset_spec


def test_the_presets_the_project_promises_exist():
    promised = {"seed_resnet18", "seed_resnet34", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56", "cifar_resnet110",
                "keras_resnet50", "keras_resnet101", "keras_resnet152", "keras_resnet50v2", "keras_resnet101v2",
                "keras_resnet152v2", "wide_resnet50_2", "resnext50_32x4d", "resnet18d", "resnet50d", "seresnet50",
                "preact_resnet18", "wrn_28_10"}
    assert promised <= set(MODEL_PRESETS)


@pytest.mark.xdist_group("preset_builds")  # on the worker that builds them for the catalogue check too
@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_preset_matches_its_reference(preset, preset_reports):
    spec, report = preset_reports[preset]  # built at full depth, the reference input size and classes
    ref = spec.reference
    assert ref is not None, f"{preset} must state the reference parameter count it reproduces"
    check_model(spec, ref.input_shape, ref.num_classes)
    counted = report.params_trainable if ref.count == "trainable" else report.params_total
    assert counted == ref.params, f"{preset}: {counted:,} parameters, reference {ref.params:,} ({ref.source})"
    assert report.output_shape == [ref.num_classes] and report.input_shape == list(ref.input_shape)
    assert report.name == preset

    # Depth (weighted layers on the main path) is the number in the name unless the preset says otherwise.
    assert report.depth == (ref.depth or int(re.search(r"(\d+)", preset).group(1)))


# Between them these presets use every layer type and option the others do: zero-padded and no-BN
# shortcuts, the seed's valid stem, V2's strided last block and subsampled identity, the deep stem with
# average-pool downsampling, groups, squeeze-and-excitation, both pre-activation blocks. The slow suite
# round-trips every preset.
EVERY_LAYER_TYPE = {"cifar_resnet20", "seed_resnet18", "keras_resnet50", "keras_resnet50v2", "resnet50d",
                    "resnext50_32x4d", "seresnet50", "preact_resnet18"}


@pytest.mark.parametrize("preset", [p if p in EVERY_LAYER_TYPE else pytest.param(p, marks=pytest.mark.slow)
                                    for p in MODEL_PRESETS])
def test_preset_survives_a_save_load_round_trip(tmp_path, preset):
    """Every layer type and option a preset uses serializes, at a fraction of full depth: one block per
    stage has every kind of layer (the first block holds the shortcut, the others repeat it), except where
    the last block strides (V2), whose second block is the one with a subsampled identity."""
    spec = preset_spec(preset)
    spec.width_multiplier = 0.25
    spec.layer_dims = [min(blocks, 2 if spec.stride_position == "last" else 1) for blocks in spec.layer_dims]
    model = build_model(spec, (32, 32, 3), 5)
    path = tmp_path / f"{preset}.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    # Called directly: predict() would trace a function for each model, which costs more than the check.
    np.testing.assert_allclose(model(x, training=False), again(x, training=False), rtol=1e-5, atol=1e-5)
    assert [w.shape for w in model.weights] == [w.shape for w in again.weights]


# ResNet-34 differs from ResNet-18 in its blocks per stage alone: it is checked in the slow suite.
@pytest.mark.parametrize("preset", ["seed_resnet18", pytest.param("seed_resnet34", marks=pytest.mark.slow)])
def test_seed_presets_are_exactly_the_seed_network(preset):
    """Same weights in, same logits out, in inference and in training mode."""
    from resnet_lab.model.blog_post import blog_post_resnet, weights_in_blog_post_order

    spec = model_spec(f"model={preset}")
    ours = build_model(spec, (32, 32, 3), 10)
    theirs = blog_post_resnet(spec.layer_dims)
    assert ours.count_params() == theirs.count_params()

    mapped = weights_in_blog_post_order(ours)
    assert [tuple(w.shape) for w in mapped] == [tuple(w.shape) for w in theirs.weights]
    for dst, src in zip(mapped, theirs.weights):
        dst.assign(src)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), rtol=1e-5, atol=1e-5)


@pytest.mark.xdist_group("preset_builds")  # the build at the reference size: 32x32x3, 10 classes
def test_seed_resnet18_costs_what_the_reference_figures_say(preset_reports):
    """../shared/reference/figures.md: about 1.1 GFLOP per 32x32 image forward (multiply-add = 2)."""
    spec, report = preset_reports["seed_resnet18"]
    assert list(spec.reference.input_shape) == [32, 32, 3] and spec.reference.num_classes == 10
    assert 1.0e9 < report.flops < 1.2e9
    assert [s.output_shape for s in report.stages] == [[30, 30, 64], [30, 30, 64], [15, 15, 128], [8, 8, 256],
                                                       [4, 4, 512]]
