"""Typed schemas for every config group, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` are validated against these dataclasses at compose time:
a misspelt key or a value of the wrong type fails before anything runs. Rules that span
several fields (list lengths, allowed names, input size) live in ``validation.py``. The model's
dataclasses are its own (``model/spec.py``): they double as the builder's plain typed spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import MISSING

from resnet_lab.model.spec import ModelConfig


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
    normalize: bool = True  # the network standardizes per channel with training statistics (false: scales to 0..1)
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
    autotune: bool = True  # time the settings auto/None allow on this machine (autotune/); false: static
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
    log_model: bool = True  # log the trained network as the run's LoggedModel (MLmodel, model.keras, code/)
    # A single run: register its model as a new version of this name. A sweep registers only its champion,
    # under this name (None: the experiment's name; "<name>-debug" for a debug=tiny sweep).
    register_model: Optional[str] = None
    champion: bool = True  # a sweep's end registers its best run (by champion_metric) with the alias `champion`
    champion_metric: str = "best_val_accuracy"  # validation, never test: the test set stays a test
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
    # The pairwise tests on the first metric: a pair is "practically equal" when its difference is shown to
    # lie within ±min_effect (0.01: one point of accuracy), and unresolved pairs are told the seeds that
    # detecting a difference of min_effect needs. scope: test_set (seed variance: the runs' own test images)
    # or new_data (adds the test set's sampling variance, from the runs' per-example outcomes).
    min_effect: float = 0.01
    scope: str = "test_set"
    table: str = "groups"  # what csv prints, one table a file: groups | pairs (text, markdown, json show both)


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

    from resnet_lab.config.resolvers import register_resolvers

    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConfig)
    cs.store(name="describe_schema", node=DescribeAppConfig)
    cs.store(name="compare_schema", node=CompareAppConfig)
    cs.store(name="bench_schema", node=BenchAppConfig)
    if experiments_dir is not None and experiments_dir.is_dir():
        for path in sorted(experiments_dir.glob("*.yaml")):
            cs.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")
