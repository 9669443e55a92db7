"""Seeds until resolved (``hydra/sweeper=until_resolved``): a sweep that adds seeds in rounds until every pair of
its groups has a verdict, within a seed budget and a time budget.

The Hydra plugin (``hydra_plugins/resnet_lab_sweeper``) hands its launcher to ``run_sweep``. Each round launches,
through that launcher, the seeds that bring every group of an unresolved pair to its next look; then the
sequential verdict (``compare/sequential.py``) is computed on every finished seed. One MLflow parent run holds
every round's runs and records each round; rerunning the same command finds that parent again by a hash of the
sweep (its groups and design) and trains only the seeds it lacks.

The modules, by job: ``options`` (the settings, checked), ``grid`` (groups, seeds and the sweep's hash),
``rounds`` (finished results, the next jobs, launching them), ``record`` (each round's line and table),
``output`` (the parent's comparison at the end), ``sweep`` (the loop).
"""

from resnet_lab.sweeps.until_resolved.options import Options
from resnet_lab.sweeps.until_resolved.sweep import run_sweep

__all__ = ["Options", "run_sweep"]
