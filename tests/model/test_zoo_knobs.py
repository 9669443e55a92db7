"""The knobs the zoo needs: ResNeXt groups, width, SE, stochastic depth, zero-init, ResNet-C/D, V2 layout."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.configs import model_spec as spec_of

from resnet_lab.model.analysis import analyze, depth
from resnet_lab.model.builder import build_model
from resnet_lab.training.optim import build_training_state


def small(*overrides):
    return spec_of("model=resnet50", "model.stem.width=8", "model.widths=[8,16]", "model.layer_dims=[1,2]",
                   "model.strides=[1,2]", *overrides)


def names(model):
    return [layer.name for layer in model.layers]


def test_groups_and_base_width_shape_the_bottleneck():
    model = build_model(small("model.block.groups=4", "model.block.base_width=32"), (32, 32, 3), 10)
    conv2 = model.get_layer("stage2_block1_conv2")
    assert conv2.groups == 4 and conv2.filters == int(16 * 32 / 64) * 4
    assert model.get_layer("stage2_block1_conv3").filters == 16 * 4  # the output width is unchanged


def test_width_multiplier_scales_stem_and_stages():
    model = build_model(small("model.width_multiplier=2.0"), (32, 32, 3), 10)
    assert model.get_layer("stem_conv").filters == 16
    assert model.get_layer("stage2_block1_conv1").filters == 32


def test_squeeze_excitation_is_a_side_branch_that_gates_channels():
    plain = build_model(small(), (32, 32, 3), 10)
    se = build_model(small("model.block.se_ratio=0.25"), (32, 32, 3), 10)
    assert "stage2_block1_se_scale" in names(se)
    assert depth(se) == depth(plain)  # SE convs are off the main path
    reduce = se.get_layer("stage2_block1_se_reduce")
    assert reduce.filters == 16 and reduce.kernel.shape[-2] == 64  # 64 channels squeezed by 1/4
    assert analyze(se).params_total - analyze(plain).params_total == sum(
        (c * c // 4 + c // 4) + (c // 4 * c + c) for c in (32, 64, 64))


def test_stochastic_depth_rises_linearly_and_only_acts_in_training():
    model = build_model(small("model.drop_path_rate=0.3"), (32, 32, 3), 10)
    rates = [layer.rate for layer in model.layers if type(layer).__name__ == "DropPath"]
    assert rates == pytest.approx([0.15, 0.3])  # block 1 of 3 gets 0, so no layer
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    keras.utils.set_random_seed(1)
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_zero_init_last_starts_each_branch_at_zero():
    model = build_model(small("model.block.zero_init_last=true"), (32, 32, 3), 10)
    assert np.all(np.asarray(model.get_layer("stage1_block1_bn3").gamma) == 0)
    assert np.all(np.asarray(model.get_layer("stage1_block1_bn2").gamma) == 1)


def test_resnet_c_stem_and_resnet_d_shortcut():
    model = build_model(small("model/stem=deep", "model.block.avg_down=true"), (32, 32, 3), 10)
    layer_names = names(model)
    assert {"stem_conv1", "stem_conv2", "stem_conv", "stem_bn", "stem_pool"} <= set(layer_names)
    assert model.get_layer("stem_conv1").strides == (2, 2)
    assert model.get_layer("stage2_block1_shortcut_avgpool").strides == (2, 2)
    assert model.get_layer("stage2_block1_shortcut_conv").strides == (1, 1)
    assert "stage1_block1_shortcut_avgpool" not in layer_names  # no pooling where nothing strides


def test_stem_without_pooling():
    model = build_model(small("model.stem.pool=none"), (32, 32, 3), 10)
    assert "stem_pool" not in names(model)
    assert analyze(model).stages[0].output_shape == [16, 16, 8]


def test_v2_layout_strides_the_last_block_and_subsamples_the_identity():
    spec = spec_of("model=keras_resnet50v2", "model.layer_dims=[2,2,2,2]")
    model = build_model(spec, (64, 64, 3), 10)
    assert model.get_layer("stage1_block2_conv2").strides == (2, 2)
    assert model.get_layer("stage1_block1_conv2").strides == (1, 1)
    assert "stage1_block2_shortcut_pool" in names(model)  # a 1x1 max-pool, no projection
    assert "stage4_block2_shortcut_pool" not in names(model)
    assert model.get_layer("stage1_block1_conv3").use_bias and not model.get_layer("stage1_block1_conv2").use_bias


def test_symmetric_padding_pads_before_strided_convs():
    model = build_model(small("model.padding=symmetric"), (32, 32, 3), 10)
    assert model.get_layer("stage2_block1_conv2_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("stage2_block1_conv2").padding == "valid"


def test_stage_block_types_mix_blocks():
    model = build_model(small("model.stage_block_types=[basic,preact_bottleneck]", "model.block.expansion=1"),
                        (32, 32, 3), 10)
    layer_names = names(model)
    assert "stage1_block1_conv3" not in layer_names and "stage2_block1_conv3" in layer_names
    assert "stage2_block1_preact_bn" in layer_names and "post_bn" in layer_names


def test_grouped_convs_train_on_this_backend():
    model = build_model(small("model.block.groups=2"), (16, 16, 3), 3)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    build_training_state(model)  # as runs do: the training step is then traced once, not twice
    history = model.fit(np.random.rand(8, 16, 16, 3), np.arange(8) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
