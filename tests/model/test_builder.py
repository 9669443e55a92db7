"""The generic builder: block types, shortcut options, names, FLOPs and save/load."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.configs import model_spec as spec_of

from resnet_lab.model.analysis import analyze, flops
from resnet_lab.model.builder import build_model


def small(*overrides):
    """A two-stage network small enough to build in milliseconds."""
    return spec_of("model=resnet18", "model.stem.width=8", "model.widths=[8,16]", "model.layer_dims=[1,1]",
                   "model.strides=[1,2]", *overrides)


def test_layer_names_tell_stage_block_and_op():
    names = {layer.name for layer in build_model(small(), (32, 32, 3), 10).layers}
    assert {"stem_conv", "stem_bn", "stem_relu", "stem_pool", "stage1_block1_conv1", "stage1_block1_bn2",
            "stage2_block1_shortcut_conv", "stage2_block1_shortcut_bn", "stage2_block1_add",
            "stage2_block1_out", "head_pool", "head_logits"} <= names


@pytest.mark.parametrize("stride_on, strided_conv", [("3x3", "conv2"), ("1x1", "conv1")])
def test_bottleneck_stride_placement(stride_on, strided_conv):
    model = build_model(small("model/block=bottleneck", f"model.block.stride_on={stride_on}"), (32, 32, 3), 10)
    strides = {n: model.get_layer(f"stage2_block1_{n}").strides for n in ("conv1", "conv2", "conv3")}
    assert strides[strided_conv] == (2, 2)
    assert all(s == (1, 1) for n, s in strides.items() if n != strided_conv)
    assert model.get_layer("stage2_block1_conv3").filters == 16 * 4  # expansion 4


def test_v1_and_v1_5_bottlenecks_have_equal_parameters_but_different_cost():
    v15 = analyze(build_model(small("model/block=bottleneck"), (32, 32, 3), 10))
    v1 = analyze(build_model(small("model/block=bottleneck_v1"), (32, 32, 3), 10))
    assert v1.params_total == v15.params_total
    assert v1.flops < v15.flops  # striding the cheap 1x1 first shrinks the 3x3's input


@pytest.mark.parametrize("block", ["preact_basic", "preact_bottleneck"])
def test_preact_blocks_keep_a_clean_identity_path_and_end_with_bn_relu(block):
    model = build_model(small(f"model/block={block}"), (32, 32, 3), 10)
    names = [layer.name for layer in model.layers]
    assert "stage1_block1_preact_bn" in names and "post_bn" in names and "post_relu" in names
    assert "stage2_block1_shortcut_bn" not in names  # v2 projections have no BN of their own
    assert not any(n.endswith("_out") for n in names)  # no ReLU after the addition


def test_zero_pad_shortcut_has_no_parameters():
    a = analyze(build_model(small("model.block.shortcut=zero_pad"), (32, 32, 3), 10))
    b = analyze(build_model(small("model.block.shortcut=projection", "model.block.shortcut_norm=false"),
                            (32, 32, 3), 10))
    assert b.params_total - a.params_total == 8 * 16  # exactly the 1x1 projection kernel


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    model = build_model(spec_of("model=cifar_resnet20"), (8, 8, 1), 10)
    pad = model.get_layer("stage2_block1_shortcut_pad")
    inner = keras.Model(model.input, [model.get_layer("stage1_block3_out").output, pad.output])
    before, after = (np.asarray(t) for t in inner(np.ones((1, 8, 8, 1), "float32")))
    np.testing.assert_allclose(after[..., :16], before[:, ::2, ::2, :])
    assert np.all(after[..., 16:] == 0)


def test_conv_bias_and_batchnorm_settings_reach_every_layer():
    model = build_model(small("model.conv_bias=true", "model.bn_epsilon=0.001", "model.bn_momentum=0.99"),
                        (32, 32, 3), 10)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert convs and all(c.use_bias for c in convs)
    assert norms and all(n.epsilon == 0.001 and n.momentum == 0.99 for n in norms)


def test_flops_match_a_hand_count_for_a_basic_network():
    model = build_model(spec_of("model=cifar_resnet20", "model.layer_dims=[1,1,1]"), (32, 32, 3), 10)
    stem = 32 * 32 * 16 * 9 * 3
    stage1 = 2 * (32 * 32 * 16 * 9 * 16)
    stage2 = 16 * 16 * 32 * 9 * 16 + 16 * 16 * 32 * 9 * 32
    stage3 = 8 * 8 * 64 * 9 * 32 + 8 * 8 * 64 * 9 * 64
    head = 64 * 10
    assert flops(model) == 2 * (stem + stage1 + stage2 + stage3 + head)


def test_flops_match_a_hand_count_for_a_bottleneck_network():
    spec = spec_of("model=resnet50", "model.stem.width=8", "model.widths=[4]", "model.layer_dims=[1]",
                   "model.strides=[2]", "model.stem.pool=none")
    model = build_model(spec, (16, 16, 3), 5)
    stem = 8 * 8 * 8 * 49 * 3                    # 7x7 stride 2: 16 -> 8
    block = 8 * 8 * 4 * 1 * 8 + 4 * 4 * 4 * 9 * 4 + 4 * 4 * 16 * 1 * 4  # 1x1, strided 3x3, 1x1 (x4)
    shortcut = 4 * 4 * 16 * 1 * 8
    head = 16 * 5
    assert flops(model) == 2 * (stem + block + shortcut + head)


def test_mixed_precision_keeps_float32_logits():
    model = build_model(small(), (32, 32, 3), 10, precision="mixed_bf16")
    assert model.get_layer("stage1_block1_conv1").compute_dtype == "bfloat16"
    assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"


@pytest.mark.parametrize("preset", ["cifar_resnet20", "seed_resnet18"])
def test_saved_model_reloads_and_predicts_the_same(tmp_path, preset):
    spec = spec_of(f"model={preset}", "model.layer_dims=[1,1,1]" if preset.startswith("cifar") else
                   "model.layer_dims=[1,1,1,1]")
    model = build_model(spec, (16, 16, 3), 4)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
