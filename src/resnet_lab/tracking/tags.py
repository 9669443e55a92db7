"""The tags that say what a run is, so that searches, the comparison and the MLflow UI can find and group it."""

TAG_ROLE = "resnet_lab.role"  # "train" or "sweep"
TAG_SWEEP_DIR = "resnet_lab.sweep_dir"
TAG_ERROR = "resnet_lab.error"
TAG_CONFIG_HASH = "resnet_lab.config_hash"  # identical configs share it (see identity.py)
TAG_GROUP_HASH = "resnet_lab.group_hash"  # configs that differ only in the seed share it: repeats, compared as a group
TAG_GROUP = "resnet_lab.group"  # the same, readable: the run name without the seed (what the MLflow UI groups by)
TAG_JOB_NUM = "resnet_lab.job_num"  # a sweep job's number, as in its output folder
TAG_SWEPT_KEYS = "resnet_lab.swept_keys"  # on a sweep's parent: the keys that vary between its jobs
TAG_CHECKPOINT_DIR = "resnet_lab.checkpoint_dir"  # absolute folder of the run's checkpoints, for resuming
TAG_FAILED_EPOCH = "resnet_lab.failed_epoch"  # the epoch whose loss diverged
TAG_REDONE_EPOCHS = "resnet_lab.redone_epochs"  # epochs trained and logged again after a damaged checkpoint
# The test split a run was scored on (tracking/outcomes.py): per-example outcomes pair only within one.
TAG_TEST_SPLIT = "resnet_lab.test_split"
# A search's trial run stopped by its pruner (hparams_search=optuna): the epoch it stopped after. The run ends
# FINISHED with its checkpoints, but is never a finished twin (skip_finished), a compared result or a champion.
TAG_PRUNED_EPOCH = "resnet_lab.pruned_epoch"
TAG_STUDY = "resnet_lab.optuna.study"  # the Optuna study a trial run (or a search's parent) belongs to
TAG_TRIAL = "resnet_lab.optuna.trial"  # the trial's number in that study
