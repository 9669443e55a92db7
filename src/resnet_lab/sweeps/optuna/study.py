"""The study: its settings, its name (derived from the search, so that the same command finds it again), its
storage, and opening it, checked against what it stores.

A study's name is a hash of what makes two commands the same search: the space, the direction, the fixed
overrides that change what a trial computes, and the experiment. ``n_trials`` is left out (it is the study's
total: a larger one adds the difference), and so are the launcher, ``n_jobs``, the sampler and the pruner.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence

from resnet_lab import tracking
from resnet_lab.errors import ConfigError
from resnet_lab.sweeps.optuna.space import Space, describe
from resnet_lab.tracking import identity
from resnet_lab.training.trial_link import PrunerSpec

DIRECTIONS = ("maximize", "minimize")
ATTR_SPACE = "resnet_lab.space"  # on the study: its space, as Optuna writes each distribution
ATTR_INTERRUPTED = "resnet_lab.interrupted"  # on a trial whose job was cut off: asked again, not counted
ATTR_RETRY_OF = "resnet_lab.retry_of"  # on the trial that asks an interrupted one again: its number
SAMPLERS = "optuna.samplers."  # where a sampler's _target_ must point
# Overrides that change where or how a trial is reported or run, not what it computes (tracking/identity.py).
NOT_THE_SEARCH = ("hydra", *(f"tracking.{k}" for k in ("uri", "run_name", "log_model", "register_model",
                                                       "champion", "champion_metric", "system_metrics",
                                                       "skip_finished", "enabled")),
                  *(f"trainer.{k}" for k in identity.NOT_IDENTITY_TRAINER),
                  *(f"data.{k}" for k in identity.NOT_IDENTITY_DATA))


@dataclass(frozen=True)
class Options:
    """The sweeper's settings (``hydra.sweeper.*``)."""

    n_trials: int
    n_jobs: int
    direction: str
    study_name: Optional[str]
    storage: Optional[str]
    sampler: Optional[Mapping[str, Any]]
    pruner: PrunerSpec
    enqueue: Sequence[Mapping[str, Any]] = ()


def check_options(options: Options, config: Any) -> None:
    """Refuse a setting that cannot work, in one line, before any run exists."""
    if not config.tracking.enabled:
        raise ConfigError("tracking.enabled", False, "true with hparams_search=optuna: the search's parent run, its "
                          "summary and the champion are read from MLflow")
    if options.n_trials < 1:
        raise ConfigError("hydra.sweeper.n_trials", options.n_trials, "1 or more trials (the study's total)")
    if options.n_jobs < 1:
        raise ConfigError("hydra.sweeper.n_jobs", options.n_jobs, "1 or more trials at a time")
    if options.direction not in DIRECTIONS:
        raise ConfigError("hydra.sweeper.direction", options.direction, "one of " + ", ".join(DIRECTIONS))
    target = str((options.sampler or {}).get("_target_", ""))
    if options.sampler is not None and not target.startswith(SAMPLERS):
        raise ConfigError("hydra.sweeper.sampler._target_", target, f"a sampler of Optuna's: {SAMPLERS}TPESampler, "
                          f"{SAMPLERS}RandomSampler, {SAMPLERS}GPSampler, ... (or hydra.sweeper.sampler=null: TPE)")
    options.pruner.check()


def study_name_of(options: Options, space: Space, experiment: str) -> str:
    """The user's ``study_name``, else ``<experiment>-<hash>`` of what makes the search the same search."""
    if options.study_name:
        return options.study_name
    fixed = sorted(o for o in space.fixed if not _reporting_only(o.partition("=")[0].lstrip("+~")))
    text = json.dumps({"space": space.to_json(), "direction": options.direction, "fixed": fixed,
                       "experiment": experiment}, sort_keys=True)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment.rsplit("/", 1)[-1]).strip("-") or "search"
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _reporting_only(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") or key.startswith(k + "/") for k in NOT_THE_SEARCH)


def make_sampler(options: Options, trials_so_far: int) -> Any:
    """The configured sampler; a seeded one is seeded past the trials it drew before, so that a rerun does not
    draw the first session's points again."""
    import optuna
    from hydra.utils import instantiate

    if options.sampler is None:
        return optuna.samplers.TPESampler()
    settings = dict(options.sampler)
    if settings.get("seed") is not None:
        settings["seed"] = int(settings["seed"]) + trials_so_far
    try:
        return instantiate(settings)
    except Exception as exc:
        raise ConfigError("hydra.sweeper.sampler", {k: v for k, v in options.sampler.items()},
                          f"a sampler Optuna can build ({str(exc).splitlines()[0][:300]})") from None


def open_study(storage: Any, url: str, name: str, options: Options, space: Space) -> Any:
    """Create the study, or load it and check that its direction and space are this search's."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweeper says what happens, in its own lines
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    where = tracking.redact_uri(url)
    try:
        found = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        found = None
    if found is None:
        study = optuna.create_study(study_name=name, storage=storage, direction=options.direction)
        study.set_user_attr(ATTR_SPACE, space.to_json())
    else:
        _check_same_search(found, where, name, options, space)
    trials = len(optuna.load_study(study_name=name, storage=storage).trials)
    study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(options, trials),
                              pruner=optuna.pruners.NopPruner())  # the jobs prune, each with the pruner
    for params in options.enqueue:
        study.enqueue_trial(_checked(dict(params), space), skip_if_exists=True)
    return study


def _check_same_search(study: Any, where: str, name: str, options: Options, space: Space) -> None:
    stored = study.direction.name.lower()
    other = f"or another hydra.sweeper.study_name (study {name!r} in {where} was made by another search)"
    if stored != options.direction:
        raise ConfigError("hydra.sweeper.direction", options.direction, f"{stored!r}, the direction of the stored "
                          f"study, {other}")
    from optuna.distributions import json_to_distribution

    saved: Dict[str, str] = study.user_attrs.get(ATTR_SPACE, {})
    ours = space.to_json()
    for key in sorted(set(saved) | set(ours)):
        if saved.get(key) == ours.get(key):
            continue
        if key not in saved:
            raise ConfigError(f"hydra.sweeper.params.{key}", space.texts[key], f"no key the stored study searches "
                              f"(it searches {', '.join(saved) or 'nothing'}), {other}")
        was = describe(json_to_distribution(saved[key]))
        raise ConfigError(f"hydra.sweeper.params.{key}", space.texts.get(key, "missing"),
                          f"{was}, as the stored study searches it, {other}")


def _checked(params: Dict[str, Any], space: Space) -> Dict[str, Any]:
    """A trial to try first (``hydra.sweeper.enqueue``): its keys searched, its values inside the space."""
    from optuna.distributions import CategoricalDistribution

    for key, value in params.items():
        dist = space.distributions.get(key)
        if dist is None:
            raise ConfigError(f"hydra.sweeper.enqueue.{key}", value,
                              f"a searched key: {', '.join(space.distributions)}")
        inside = (value in dist.choices if isinstance(dist, CategoricalDistribution)
                  else isinstance(value, (int, float)) and dist.low <= value <= dist.high)
        if not inside:
            raise ConfigError(f"hydra.sweeper.enqueue.{key}", value, f"a value of {describe(dist)}")
    return params
