"""The plan: shape arithmetic without a framework, one table of block kinds, stages read from the plan."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.configs import REPO, compose_config, model_spec
from omegaconf import OmegaConf

from resnet_lab.config.resolvers import layer_dims_for_depth
from resnet_lab.config.validation import validate_describe_config
from resnet_lab.model.analysis import analyze, depth
from resnet_lab.model.builder import build_model
from resnet_lab.model.kinds import BLOCK_KINDS
from resnet_lab.model.plan import BlockSpec, block_plan, stage_widths, stem_width
from resnet_lab.model.spec import BLOCK_TYPES


def small(*overrides):
    """Two stages of one and two blocks: three blocks, built in milliseconds."""
    return model_spec("model=resnet18", "model.stem.width=8", "model.widths=[8,16]", "model.layer_dims=[1,2]",
                      "model.strides=[1,2]", *overrides)


def test_validating_a_config_imports_no_framework():
    code = ("import json, sys, resnet_lab.config.validation, resnet_lab.model.plan; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_block_plan_of_resnet18():
    plan = block_plan(model_spec("model=resnet18"))
    assert all(isinstance(planned, BlockSpec) for planned in plan)
    assert [(p.stage, p.block, p.width, p.stride) for p in plan] == [
        (1, 1, 64, 1), (1, 2, 64, 1), (2, 1, 128, 2), (2, 2, 128, 1),
        (3, 1, 256, 2), (3, 2, 256, 1), (4, 1, 512, 2), (4, 2, 512, 1),
    ]
    assert {p.kind for p in plan} == {BLOCK_KINDS["basic"]}
    assert plan[2].name == "stage2_block1"


def test_stride_position_last_strides_each_stages_last_block():
    spec = model_spec("model=keras_resnet50v2", "model.layer_dims=[2,3,1,2]")
    strided = [(p.stage, p.block) for p in block_plan(spec) if p.stride != 1]
    assert strided == [(1, 2), (2, 3), (3, 1)]  # strides [2, 2, 2, 1]: the last stage keeps its size


def test_stage_block_types_give_each_stage_its_kind():
    spec = small("model.stage_block_types=[basic,preact_bottleneck]", "model.block.expansion=1")
    assert [(p.stage, p.kind.name) for p in block_plan(spec)] == [
        (1, "basic"), (2, "preact_bottleneck"), (2, "preact_bottleneck")]


def test_width_multiplier_scales_stem_and_stages():
    spec = small("model.width_multiplier=1.5")
    assert (stem_width(spec), stage_widths(spec)) == (12, [12, 24])
    assert [p.width for p in block_plan(spec)] == [12, 24, 24]


def test_zero_pad_check_reads_a_composed_config_with_a_width_multiplier():
    validate_describe_config(compose_config("describe", ["model=cifar_resnet20", "model.width_multiplier=2.0"]))


def test_block_kinds_table_is_the_list_of_block_types():
    assert BLOCK_TYPES == tuple(BLOCK_KINDS) == ("basic", "bottleneck", "preact_basic", "preact_bottleneck")
    for name, kind in BLOCK_KINDS.items():
        assert kind.name == name
        assert kind.preact == name.startswith("preact_") and kind.bottleneck == name.endswith("bottleneck")


@pytest.mark.parametrize("name", list(BLOCK_KINDS))
def test_block_kind_convs_and_expansion_agree_with_resolver_presets_and_builder(name):
    kind = BLOCK_KINDS[name]
    assert layer_dims_for_depth(2 + 3 * kind.convs * 4, 3, name) == [4, 4, 4]
    preset = OmegaConf.load(REPO / "conf" / "model" / "block" / f"{name}.yaml")
    assert (preset.type, preset.expansion) == (name, kind.expansion)

    spec = small(f"model/block={name}")
    model = build_model(spec, (16, 16, 3), 4)
    layers = {layer.name for layer in model.layers}
    assert depth(model) == 2 + kind.convs * len(block_plan(spec))
    assert ("stage1_block1_preact_bn" in layers) == kind.preact
    assert ("stage1_block1_conv3" in layers) == kind.bottleneck


def test_analyze_reads_stages_and_block_counts_from_the_plan():
    spec = small("model/block=preact_bottleneck")
    model = build_model(spec, (32, 32, 3), 10)
    report = analyze(model, spec=spec)
    assert [(s.name, s.blocks) for s in report.stages] == [("stem", 0), ("stage1", 1), ("stage2", 2)]
    assert [s.output_shape for s in report.stages] == [[8, 8, 8], [8, 8, 32], [4, 4, 64]]
    assert (report.stem, report.block) == ("imagenet", "preact_bottleneck")


def test_analyze_without_a_spec_reports_no_guessed_stages():
    spec = small()
    model = build_model(spec, (32, 32, 3), 10)
    with_spec, without = analyze(model, spec=spec), analyze(model)
    assert [s.name for s in without.stages] == ["stem"]  # stages come from the plan, never from layer names
    assert without.stages[0] == with_spec.stages[0] and (without.stem, without.block) == ("", "")
    assert (without.depth, without.params_total, without.flops) == (with_spec.depth, with_spec.params_total,
                                                                     with_spec.flops)
