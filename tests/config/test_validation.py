"""Bad input: a one-line error naming the key, the value received and what is allowed."""

from __future__ import annotations

import pytest
from helpers.configs import compose_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from resnet_lab.config.validation import validate_describe_config, validate_train_config
from resnet_lab.errors import ConfigError

CASES = [
    (["model=resnet18", "model.layer_dims=[2,2,2]"],
     r"model\.layer_dims=\[2, 2, 2\] is not allowed: one entry per stage; it has 3 entries but model\.widths"),
    (["model=resnet18", "model.strides=[1,2]"], r"model\.strides=\[1, 2\] .* has 2 entries"),
    (["model.widths=[16,0,64]"], r"model\.widths=\[16, 0, 64\] is not allowed: positive integers"),
    (["model.block.type=wide"], r"model\.block\.type='wide' is not allowed: one of 'basic', 'bottleneck'"),
    (["model.block.shortcut=dense"], r"model\.block\.shortcut='dense' .* one of 'projection', 'zero_pad'"),
    (["model.stem.pool=avg"], r"model\.stem\.pool='avg' is not allowed: one of 'none', 'max'"),
    (["model.block.stride_on=1x1"], r"model\.block\.stride_on='1x1' is not allowed: '3x3' unless every block is a "
                                    r"bottleneck"),
    (["model.block.groups=32"], r"model\.block\.groups=32 is not allowed: 1 unless every block is a bottleneck"),
    (["model=resnet50", "model.stage_block_types=[bottleneck,basic,basic,preact_basic]", "model.block.groups=2"],
     r"model\.block\.groups=2 .* blocks here: basic, bottleneck, preact_basic"),
    (["model=resnet50", "model.stage_block_types=[basic]"],
     r"model\.stage_block_types=\['basic'\] is not allowed: empty or one block type per stage \(4 stages\)"),
    (["model.stage_block_types=[basic,dense,basic]"], r"model\.stage_block_types='dense' is not allowed: one of"),
    (["model/block=preact_basic", "model.block.zero_init_last=true"], r"model\.block\.zero_init_last=True .* "
                                                                       r"pre-activation"),
    (["model.block.avg_down=true"], r"model\.block\.avg_down=True is not allowed: false unless "
                                    r"model\.block\.shortcut='projection'"),
    (["model.stem.convs=[8,8,32]"], r"model\.stem\.width=16 is not allowed: the last width of "
                                    r"model\.stem\.convs=\[8, 8, 32\], i\.e\. 32"),
    (["model.drop_path_rate=1.0"], r"model\.drop_path_rate=1\.0 is not allowed: a rate in \[0, 1\)"),
    (["model.width_multiplier=0"], r"model\.width_multiplier=0\.0 is not allowed: a positive number"),
    (["model.padding=valid"], r"model\.padding='valid' is not allowed: one of 'same', 'symmetric'"),
    (["model=resnet50", "model.block.base_width=1", "model.width_multiplier=0.1"],
     r"model\.block\.base_width=1 is not allowed: a value that leaves the bottleneck"),
    (["model.widths=[64,32,16]"], r"model\.widths=\[64, 32, 16\] .* non-decreasing channels .*zero_pad"),
    (["model=seed_resnet18", "data.image_shape=[2,2,1]"],
     r"data\.image_shape=\[2, 2, 1\] is not allowed: an input of at least 3x3 pixels before the stem conv"),
    (["data.image_shape=[8,8]"], r"data\.image_shape=\[8, 8\] is not allowed: \[height, width, channels\]"),
    (["data.num_classes=0"], r"data\.num_classes=0 is not allowed: a positive integer"),
    (["model.head.dropout=1.5"], r"model\.head\.dropout=1\.5 is not allowed: a rate in \[0, 1\)"),
]


@pytest.mark.parametrize("overrides, message", CASES)
def test_describe_rejects_bad_model_configs(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_describe_config(compose_config("describe", overrides))
    assert "\n" not in str(info.value)


TRAIN_CASES = [
    (["optimizer.name=rmsprop"], r"optimizer\.name='rmsprop' is not allowed: one of 'sgd', 'adam', 'adamw'"),
    (["schedule.name=exponential"], r"schedule\.name='exponential' is not allowed: one of 'constant', 'step', 'cosine'"),
    (["trainer.epochs=0"], r"trainer\.epochs=0 is not allowed: a positive integer"),
    (["trainer.batch_size=-8"], r"trainer\.batch_size=-8 is not allowed"),
    (["trainer.precision=fp8"], r"trainer\.precision='fp8' is not allowed: one of 'fp32', 'mixed_bf16'"),
    (["optimizer.learning_rate=0"], r"optimizer\.learning_rate=0\.0 is not allowed: a positive number"),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], r"data\.val_fraction=0\.5 .* leaves training data"),
    (["data.name=imagenet"], r"data\.name='imagenet' is not allowed: one of 'digits', 'synthetic'"),
    # MLflow refuses these names only after training; '@' would break models:/NAME@champion.
    (["tracking.register_model=team/digits"], r"tracking\.register_model='team/digits' is not allowed: null or a "
                                              r"name without '/', ':' or '@'"),
    (["tracking.register_model='digits@v2'"], r"tracking\.register_model='digits@v2' is not allowed"),
    (["tracking.champion_metric=test_accuracy"], r"tracking\.champion_metric='test_accuracy' is not allowed: one of "
                                                 r"'best_val_accuracy', 'val_accuracy', 'val_loss'"),
]


@pytest.mark.parametrize("overrides, message", TRAIN_CASES)
def test_train_rejects_bad_training_configs(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_train_config(compose_config("train", overrides))


def test_every_shipped_config_is_valid():
    validate_train_config(compose_config("train"))
    validate_describe_config(compose_config("describe"))


@pytest.mark.parametrize("override, key", [
    ("model.widht=[1,2]", "model.widht"),            # a typo
    ("model.layer_dims=[a,b]", "model.layer_dims"),  # a wrong type
    ("trainer.epochs=ten", "trainer.epochs"),
    ("model/block=resnext", "model/block"),          # an option that does not exist
])
def test_typos_and_wrong_types_fail_at_compose_time(override, key):
    with pytest.raises(ConfigCompositionException, match=key.replace(".", r"\.")):
        compose_config("train", [override])


def test_the_schema_types_the_composed_model():
    model = OmegaConf.to_object(compose_config("train", ["model=resnet50"]).model)
    assert type(model).__name__ == "ModelConfig"
    assert model.block.expansion == 4 and model.layer_dims == [3, 4, 6, 3]


@pytest.mark.parametrize("override, key", [("+trainer.epoch=5", "trainer.epoch"),
                                           ("+model.block.cardinality=32", "model.block.cardinality")])
def test_keys_added_with_plus_that_nothing_reads_are_refused(override, key):
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}=\S+ is not allowed: a key the schema defines"):
        validate_train_config(compose_config("train", [override]))
