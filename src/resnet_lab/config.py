"""Typed schemas for every config group, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` are validated against these dataclasses at compose time:
a misspelt key or a value of the wrong type fails before anything runs. Rules that span
several fields (list lengths, allowed names, input size) live in ``validation.py``.
The model dataclasses double as the builder's plain typed spec (``OmegaConf.to_object``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from omegaconf import MISSING

# Allowed values, shared by validation, the builder and the docs.
BLOCK_TYPES = ("basic", "bottleneck", "preact_basic", "preact_bottleneck")
STRIDE_PLACEMENTS = ("3x3", "1x1")
SHORTCUTS = ("projection", "zero_pad")
PADDINGS = ("same", "valid")
STEM_POOLS = ("none", "max")
HEAD_POOLS = ("avg", "max")
DATASETS = ("digits", "synthetic", "cifar10", "cifar100")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "mixed_bf16", "mixed_fp16", "auto")  # auto: mixed_bf16 where the hardware has bf16
DESCRIBE_FORMATS = ("text", "json")
BENCH_FORMATS = ("text", "json")
BENCH_BASELINES = ("seed", "raw_fit")  # the seed's subclassed model; model.fit without the framework


@dataclass
class StemConfig:
    name: str = MISSING
    width: int = 64  # filters of the stem convolution
    kernel_size: int = 3
    stride: int = 1
    padding: str = "same"  # same | valid (the seed's stem is valid)
    norm: bool = True  # BN + ReLU after the conv; pre-activation nets leave it to the first block
    pool: str = "none"  # none | max
    pool_size: int = 3
    pool_stride: int = 2
    pool_padding: str = "same"


@dataclass
class BlockConfig:
    type: str = MISSING  # basic | bottleneck | preact_basic | preact_bottleneck
    expansion: int = 1  # output channels = stage width * expansion (4 for bottlenecks)
    stride_on: str = "3x3"  # bottleneck stride on the 3x3 (v1.5, torchvision) or the first 1x1 (v1)
    shortcut: str = "projection"  # where shapes change: 1x1 conv (B) or zero-padded identity (A)
    shortcut_norm: bool = True  # BN after the projection conv (the seed has none)


@dataclass
class HeadConfig:
    pool: str = "avg"  # global pooling before the classifier: avg | max
    dropout: float = 0.0  # dropout rate before the classifier


@dataclass
class ReferenceConfig:
    """A published fact the preset must reproduce; checked by the test suite."""

    params: int = MISSING
    count: str = "trainable"  # trainable | total (Keras counts BN moving statistics in total)
    input_shape: List[int] = MISSING
    num_classes: int = MISSING
    source: str = MISSING  # where the number comes from


@dataclass
class ModelConfig:
    name: str = MISSING
    stem: StemConfig = MISSING
    block: BlockConfig = MISSING
    widths: List[int] = MISSING  # filters per stage (bottleneck: the inner width)
    layer_dims: List[int] = MISSING  # residual blocks per stage
    strides: List[int] = MISSING  # stride of the first block of each stage
    head: HeadConfig = field(default_factory=HeadConfig)
    conv_bias: bool = False  # biases on every conv (the seed and keras.applications v1 use them)
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention: weight of the old moving average
    kernel_initializer: str = "he_normal"
    reference: Optional[ReferenceConfig] = None


@dataclass
class DataConfig:
    name: str = MISSING
    image_shape: List[int] = MISSING  # height, width, channels
    num_classes: int = MISSING
    path: Optional[str] = None  # archive or folder for data sets read from disk
    val_fraction: float = 0.1  # share of the training data held out for validation
    test_fraction: float = 0.2  # share held out for test where the set has no official test split
    split_seed: int = 0  # fixed, so every run sees the same split whatever `seed` is
    normalize: bool = True  # per-channel standardization from training statistics
    train_size: int = 2048  # synthetic only
    val_size: int = 256  # synthetic only
    test_size: int = 512  # synthetic only


@dataclass
class OptimizerConfig:
    name: str = MISSING  # sgd | adam | adamw
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    beta_1: float = 0.9  # adam, adamw
    beta_2: float = 0.999  # adam, adamw
    weight_decay: float = 0.0  # decoupled decay applied by the optimizer
    clipnorm: Optional[float] = None


@dataclass
class ScheduleConfig:
    name: str = MISSING  # constant | cosine
    warmup_epochs: float = 0.0  # linear warm-up from 0 before the schedule starts
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of the peak rate


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    steps_per_epoch: Optional[int] = None  # cap on steps per epoch, for smoke runs
    monitor: str = "val_accuracy"  # the metric a run returns to sweepers
    precision: str = "auto"  # auto (mixed_bf16 on bf16 hardware, else fp32) | fp32 | mixed_bf16 | mixed_fp16
    jit_compile: Optional[bool] = None  # None lets Keras decide (XLA where supported)
    verbose: Optional[int] = None  # Keras fit verbosity; None: a bar in a terminal, a line per epoch elsewhere


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: Optional[str] = None  # None: sqlite mlflow.db in the launch directory
    experiment: str = "resnet-lab"
    run_name: Optional[str] = None  # None: derived from the preset name
    log_model: bool = True  # save the trained model as a run artifact


@dataclass
class DescribeConfig:
    format: str = "text"  # text | json
    save_model: Optional[str] = None  # also write the built model to this .keras file


@dataclass
class BenchConfig:
    steps: int = 20  # timed training (and inference) steps per measurement, after the warm-up
    warmup_steps: int = 2  # untimed steps first: tracing and compilation happen here
    repeats: int = 1  # timed measurements per model, taken in turns; the median is reported
    baselines: List[str] = field(default_factory=list)  # measured in the same process: seed | raw_fit
    format: str = "text"  # text | json (one line)


@dataclass
class TrainAppConfig:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    schedule: ScheduleConfig = MISSING
    trainer: TrainerConfig = MISSING
    tracking: TrackingConfig = MISSING
    seed: int = 42  # seeds Python, NumPy and the Keras backend


@dataclass
class DescribeAppConfig:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    describe: DescribeConfig = field(default_factory=DescribeConfig)
    seed: int = 42


@dataclass
class BenchAppConfig:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    schedule: ScheduleConfig = MISSING
    trainer: TrainerConfig = MISSING
    tracking: TrackingConfig = MISSING
    bench: BenchConfig = field(default_factory=BenchConfig)
    seed: int = 42


def register_configs(experiments_dir: Optional[Path] = None) -> None:
    """Register the application schemas (and the experiment deltas) in Hydra's ConfigStore.

    The primary configs list their schema first in their defaults, so every group merged
    into them (model, model/stem, data, ...) is checked against the typed fields above.

    Experiments live in the top-level ``experiments/`` folder rather than under ``conf/``;
    registering each file as a node of the ``experiment`` group makes ``+experiment=NAME``
    work without duplicating the folder inside the config tree.
    """
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConfig)
    cs.store(name="describe_schema", node=DescribeAppConfig)
    cs.store(name="bench_schema", node=BenchAppConfig)
    if experiments_dir is not None and experiments_dir.is_dir():
        for path in sorted(experiments_dir.glob("*.yaml")):
            cs.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")
