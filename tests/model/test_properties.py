"""Random architectures: the result is a valid model or a clear validation error, never a Keras exception."""

from __future__ import annotations

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_lab.errors import ConfigError
from resnet_lab.model.builder import build_model
from resnet_lab.model.checks import check_model
from resnet_lab.model.spec import BLOCK_TYPES, BlockConfig, HeadConfig, ModelConfig, StemConfig


def mostly(good, *bad):
    """Usually a valid value, now and then one of the ``bad`` ones, so both paths get exercised."""
    return st.integers(0, 29).flatmap(lambda roll: st.sampled_from(bad) if roll == 0 else good)


@st.composite
def architectures(draw):
    stages = draw(st.integers(min_value=1, max_value=3))
    extra = draw(mostly(st.just(0), 1, -1))  # now and then a list of the wrong length

    def stage_list(values, *bad):
        return draw(st.lists(mostly(values, *bad), min_size=max(0, stages + extra), max_size=max(0, stages + extra)))

    convs = draw(st.sampled_from([[], [], [4, 8], [4, 4, 8]]))
    block_type = draw(mostly(st.sampled_from(BLOCK_TYPES), "dense"))
    bottleneck, preact = block_type.endswith("bottleneck"), block_type.startswith("preact_")
    shortcut = draw(mostly(st.sampled_from(["projection", "zero_pad"]), "none"))
    # Options that only some blocks accept: usually drawn to fit, now and then not.
    fits = lambda ok: draw(st.integers(0, 29)) == 0 or ok
    spec = ModelConfig(
        name="drawn",
        stem=StemConfig(
            name="drawn", width=convs[-1] if convs else draw(mostly(st.integers(1, 8), 0, -1)),
            kernel_size=draw(st.integers(1, 7)), stride=draw(mostly(st.integers(1, 3), 0)),
            padding=draw(mostly(st.sampled_from(["same", "valid", "symmetric"]), "full")),
            norm=draw(st.booleans()), pool=draw(mostly(st.sampled_from(["none", "max"]), "avg")),
            pool_size=draw(st.integers(1, 3)), pool_stride=draw(st.integers(1, 2)),
            pool_padding=draw(st.sampled_from(["same", "valid", "symmetric"])), convs=convs,
        ),
        block=BlockConfig(
            type=block_type, expansion=draw(mostly(st.integers(1, 4), 0)),
            stride_on=draw(st.sampled_from(["3x3", "1x1"])) if fits(bottleneck) else "3x3",
            shortcut=shortcut, shortcut_norm=draw(st.booleans()),
            avg_down=draw(st.booleans()) if fits(shortcut == "projection") else False,
            subsample_identity=draw(st.booleans()),
            groups=draw(mostly(st.sampled_from([1, 2, 4]), 0)) if fits(bottleneck) else 1,
            base_width=draw(mostly(st.sampled_from([64, 16, 128]), 0)) if fits(bottleneck) else 64,
            se_ratio=draw(mostly(st.sampled_from([0.0, 0.25]), 1.5)),
            se_divisor=draw(mostly(st.integers(1, 8), 0)),
            zero_init_last=draw(st.booleans()) if fits(not preact) else False,
        ),
        widths=stage_list(st.integers(1, 16), 0, -1),
        layer_dims=stage_list(st.integers(1, 2), 0),
        strides=stage_list(st.integers(1, 3), 0),
        head=HeadConfig(pool=draw(mostly(st.sampled_from(["avg", "max"]), "flatten")),
                        dropout=draw(mostly(st.sampled_from([0.0, 0.5]), 1.0))),
        padding=draw(st.sampled_from(["same", "symmetric"])),
        stride_position=draw(st.sampled_from(["first", "last"])),
        width_multiplier=draw(mostly(st.sampled_from([0.5, 1.0, 2.0]), 0.0)),
        drop_path_rate=draw(mostly(st.sampled_from([0.0, 0.2]), 1.0)),
    )
    image_shape = draw(mostly(st.lists(st.integers(1, 12), min_size=3, max_size=3), [8, 8], [0, 8, 1]))
    num_classes = draw(mostly(st.integers(1, 5), 0))
    return spec, image_shape, num_classes


def build_or_refuse(spec, image_shape, num_classes) -> None:
    try:
        check_model(spec, image_shape, num_classes)
    except ConfigError as exc:
        assert "\n" not in str(exc) and " is not allowed: " in str(exc)
        return
    model = build_model(spec, image_shape, num_classes)  # must not raise once validation passed
    assert model.output_shape == (None, num_classes)
    keras.backend.clear_session()


# A quick sample in every run; the slow suite draws several times more.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_architectures_build_or_fail_validation(drawn):
    build_or_refuse(*drawn)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_many_more_random_architectures_build_or_fail_validation(drawn):
    build_or_refuse(*drawn)
