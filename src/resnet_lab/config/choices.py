"""The values the configs outside the model allow, shared by the schema's comments, the checks and the docs.

The model's own allowed values are in ``model/spec.py``; the data sets come with their loaders
(``data/registry.py``).
"""

from resnet_lab.data.registry import DATASETS  # noqa: F401 - the names come with their loaders (no numpy)

OPTIMIZERS = ("sgd", "adam", "adamw")
WEIGHT_DECAY_MODES = ("decoupled", "l2")
SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "one_cycle")
DISTRIBUTIONS = ("none", "data_parallel")
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")  # metrics a run can select checkpoints by
PRECISIONS = ("fp32", "mixed_bf16", "mixed_fp16", "auto")  # auto: mixed_bf16 where the hardware has bf16
DESCRIBE_FORMATS = ("text", "json")
COMPARE_FORMATS = ("text", "markdown", "csv", "json")
COMPARE_TABLES = ("groups", "pairs")  # the table csv prints: a CSV file holds one
COMPARE_SCOPES = ("test_set", "new_data")  # what a pairwise test generalizes to: these test images, or new ones
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED")  # MLflow's run states
BENCH_FORMATS = ("text", "json")
BENCH_BASELINES = ("seed", "raw_fit", "other_xla")  # the seed's subclassed model; model.fit without the
# framework; the same model compiled with the other XLA choice
# What a sweep's champion is chosen by: validation metrics only, so that the test set stays a test.
CHAMPION_METRICS = ("best_val_accuracy", "val_accuracy", "val_loss")
REGISTRY_NAME_FORBIDDEN = ("/", ":", "@")  # MLflow refuses '/' and ':'; '@' would break models:/NAME@champion
