"""Typed schemas for every config group, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` are validated against these dataclasses at compose time:
a misspelt key or a value of the wrong type fails before anything runs. Rules that span
several fields (list lengths, allowed names, input size) live in ``validation.py``.
The model dataclasses double as the builder's plain typed spec (``OmegaConf.to_object``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import MISSING

from resnet_lab.data.registry import DATASETS  # noqa: F401 - the names come with their loaders (no numpy)
from resnet_lab.model.kinds import BLOCK_KINDS

# Allowed values, shared by validation, the builder and the docs.
BLOCK_TYPES = tuple(BLOCK_KINDS)  # basic, bottleneck, preact_basic, preact_bottleneck
STRIDE_PLACEMENTS = ("3x3", "1x1")
SHORTCUTS = ("projection", "zero_pad")
PADDINGS = ("same", "valid", "symmetric")  # symmetric: explicit k//2 zero-padding, as PyTorch pads
CONV_PADDINGS = ("same", "symmetric")
STRIDE_POSITIONS = ("first", "last")
STEM_POOLS = ("none", "max")
HEAD_POOLS = ("avg", "max")
OPTIMIZERS = ("sgd", "adam", "adamw")
WEIGHT_DECAY_MODES = ("decoupled", "l2")
SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "one_cycle")
DISTRIBUTIONS = ("none", "data_parallel")
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")  # metrics a run can select checkpoints by
PRECISIONS = ("fp32", "mixed_bf16", "mixed_fp16", "auto")  # auto: mixed_bf16 where the hardware has bf16
DESCRIBE_FORMATS = ("text", "json")
COMPARE_FORMATS = ("text", "markdown", "csv", "json")
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED")  # MLflow's run states
BENCH_FORMATS = ("text", "json")
BENCH_BASELINES = ("seed", "raw_fit", "other_xla")  # the seed's subclassed model; model.fit without the
# framework; the same model compiled with the other XLA choice


@dataclass
class StemConfig:
    name: str = MISSING
    width: int = 64  # filters of the stem convolution
    kernel_size: int = 3
    stride: int = 1
    padding: str = "same"  # same | valid (the seed's) | symmetric (keras.applications, PyTorch)
    convs: List[int] = field(default_factory=list)  # ResNet-C deep stem: widths of its 3x3 convs, last == width
    norm: bool = True  # BN + ReLU after the conv; pre-activation nets leave it to the first block
    pool: str = "none"  # none | max
    pool_size: int = 3
    pool_stride: int = 2
    pool_padding: str = "same"  # same | valid | symmetric


@dataclass
class BlockConfig:
    type: str = MISSING  # basic | bottleneck | preact_basic | preact_bottleneck
    expansion: int = 1  # output channels = stage width * expansion (4 for bottlenecks)
    stride_on: str = "3x3"  # bottleneck stride on the 3x3 (v1.5, torchvision) or the first 1x1 (v1)
    shortcut: str = "projection"  # where shapes change: 1x1 conv (B) or zero-padded identity (A)
    shortcut_norm: bool = True  # BN after the projection conv (the seed has none)
    avg_down: bool = False  # ResNet-D: 2x2 average-pool, then a stride-1 projection, where the stride is
    subsample_identity: bool = False  # stride without a channel change: 1x1 max-pool, not a projection (Keras V2)
    groups: int = 1  # ResNeXt cardinality: groups of the bottleneck's 3x3 conv
    base_width: int = 64  # bottleneck inner width = width * base_width / 64 * groups (128: Wide ResNet-50-2)
    se_ratio: float = 0.0  # squeeze-and-excitation reduction (1/16 in SENet); 0 turns it off
    se_divisor: int = 1  # round the squeeze width to a multiple of this (timm uses 8)
    zero_init_last: bool = False  # the branch's last BN starts at gamma 0, so each block starts as identity


@dataclass
class HeadConfig:
    pool: str = "avg"  # global pooling before the classifier: avg | max
    dropout: float = 0.0  # dropout rate before the classifier


@dataclass
class ReferenceConfig:
    """A published fact the preset must reproduce; checked by the test suite."""

    params: int = MISSING
    count: str = "trainable"  # trainable | total (Keras counts BN moving statistics in total)
    depth: Optional[int] = None  # when it differs from the number in the preset's name, and why
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
    bias_without_norm: bool = False  # a bias on convs that no BN follows (keras.applications v2)
    padding: str = "same"  # strided convs: same (TensorFlow's) | symmetric (PyTorch, keras.applications v2)
    stride_position: str = "first"  # which block of a stage strides: first (usual) | last (Keras V2)
    width_multiplier: float = 1.0  # scales every width, stem and stages alike
    stage_block_types: List[str] = field(default_factory=list)  # a block type per stage; empty: block.type
    drop_path_rate: float = 0.0  # stochastic depth, rising linearly from 0 to this over the blocks
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention: weight of the old moving average
    kernel_initializer: str = "he_normal"
    reference: Optional[ReferenceConfig] = None


@dataclass
class AugmentConfig:
    """Training-time augmentation (Keras layers in front of the model; inference sees raw images)."""

    crop_padding: int = 0  # pad each side with this many zeros, then crop back at random (He et al.: 4)
    flip: bool = False  # random horizontal flip (wrong for digits, right for natural images)
    cutout: int = 0  # side of one random square zeroed per image; 0 turns it off


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
    verify_checksum: bool = True  # check archives against their publisher's checksum
    download: bool = True  # fetch a missing archive into the Keras cache when data.path is null
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class OptimizerConfig:
    name: str = MISSING  # sgd | adam | adamw
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    beta_1: float = 0.9  # adam, adamw
    beta_2: float = 0.999  # adam, adamw
    weight_decay: float = 0.0  # strength of the decay of conv and dense kernels (BN and biases are exempt)
    weight_decay_mode: str = "decoupled"  # decoupled (the optimizer shrinks weights) | l2 (a loss term)
    clipnorm: Optional[float] = None  # clip each gradient to this norm
    global_clipnorm: Optional[float] = None  # clip all gradients together to this norm


@dataclass
class ScheduleConfig:
    name: str = MISSING  # constant | step | cosine | warmup_cosine | one_cycle
    warmup_epochs: float = 0.0  # linear warm-up from 0 before the schedule starts (constant, cosine)
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of the peak rate
    milestones: List[float] = field(default_factory=list)  # step: epochs at which the rate is multiplied by gamma
    gamma: float = 0.1  # step: factor applied at each milestone
    pct_start: float = 0.3  # one_cycle: share of the run spent rising to the peak rate
    div_factor: float = 25.0  # one_cycle: the run starts at peak / div_factor
    final_div_factor: float = 1e4  # one_cycle: the run ends at the starting rate / final_div_factor


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    steps_per_epoch: Optional[int] = None  # cap on steps per epoch, for smoke runs
    monitor: str = "val_accuracy"  # the metric a run returns to sweepers
    precision: str = "auto"  # auto (the fastest this hardware computes natively) | fp32 | mixed_bf16 | mixed_fp16
    jit_compile: Optional[bool] = None  # None: XLA where it trains faster (autotune)
    autotune: bool = True  # time the settings auto/None allow on this machine (autotune.py); false: static
    autotune_max_seconds: float = 120.0  # cap on one probe's wall time
    autotune_cache: Optional[str] = None  # None: $RESNET_LAB_CACHE_DIR or $XDG_CACHE_HOME/resnet-lab
    verbose: Optional[int] = None  # Keras fit verbosity; None: a bar in a terminal, a line per epoch elsewhere
    label_smoothing: float = 0.0  # share of the target probability spread over all classes
    early_stopping_patience: Optional[int] = None  # stop after this many epochs without a better monitor value
    restore_best: bool = True  # test, and log as the model, the checkpoint with the best monitor value
    resume: bool = False  # continue the newest unfinished run of the same config from its last checkpoint
    deterministic: bool = False  # deterministic ops: same seed, same metrics (slower on accelerators)
    distribution: str = "none"  # none | data_parallel (every local device, one replica each)


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: Optional[str] = None  # None: sqlite mlflow.db in the launch directory
    experiment: str = "resnet-lab"
    run_name: Optional[str] = None  # None: the preset and the overrides, e.g. resnet34-lr0.1-bs128
    log_model: bool = True  # log the trained network as the run's MLflow Model (model/, with model.keras)
    register_model: Optional[str] = None  # also register each trained model as a version of this name
    system_metrics: bool = False  # log MLflow's system metrics (CPU, memory, GPU where present) while training
    skip_finished: bool = False  # skip a run whose identical config (same config hash) already FINISHED


@dataclass
class DescribeConfig:
    format: str = "text"  # text | json
    save_model: Optional[str] = None  # also write the built model to this .keras file
    plot: Optional[str] = None  # also draw the architecture to this image file (needs pydot and Graphviz)


@dataclass
class CompareConfig:
    experiment: Optional[str] = None  # None: tracking.experiment
    parent: Optional[str] = None  # only the jobs of one sweep: its parent run id, or "latest"
    tags: Dict[str, str] = field(default_factory=dict)  # only runs with these tag values, e.g. {preset: resnet18}
    status: Optional[str] = None  # only runs in this state (FINISHED, FAILED, ...); None: all
    metrics: List[str] = field(default_factory=lambda: ["test_accuracy", "best_val_accuracy"])  # columns
    group: str = "seed"  # seed: runs that differ only in seed are one row (mean, sd, 95% interval); none: per run
    sort: str = "depth"  # the column to sort by
    descending: bool = False
    format: str = "text"  # text | markdown | csv | json
    plot_dir: Optional[str] = None  # a folder: also write accuracy vs depth/params/train time as PNG
    plot_metric: str = "test_accuracy"  # the metric on the plots' y axis


@dataclass
class BenchConfig:
    steps: int = 20  # timed training (and inference) steps per measurement, after the warm-up
    warmup_steps: int = 2  # untimed steps first: tracing and compilation happen here
    repeats: int = 1  # timed measurements per model, taken in turns; the median is reported
    baselines: List[str] = field(default_factory=list)  # measured in the same process: seed | raw_fit | other_xla
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
class CompareAppConfig:
    tracking: TrackingConfig = MISSING
    compare: CompareConfig = field(default_factory=CompareConfig)


@dataclass
class DescribeAppConfig:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    describe: DescribeConfig = field(default_factory=DescribeConfig)
    seed: int = 42


@dataclass
class BenchAppConfig(TrainAppConfig):
    """Everything training composes, plus what and how to measure."""

    bench: BenchConfig = field(default_factory=BenchConfig)


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

    from resnet_lab.resolvers import register_resolvers

    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConfig)
    cs.store(name="describe_schema", node=DescribeAppConfig)
    cs.store(name="compare_schema", node=CompareAppConfig)
    cs.store(name="bench_schema", node=BenchAppConfig)
    if experiments_dir is not None and experiments_dir.is_dir():
        for path in sorted(experiments_dir.glob("*.yaml")):
            cs.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")
