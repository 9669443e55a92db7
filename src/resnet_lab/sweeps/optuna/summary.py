"""What a search says: its trials' run names, the closing summary and table, the parent's description, and
Optuna's own plots as images."""

from __future__ import annotations

import logging
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from resnet_lab.tracking.naming import GROUPS, MAX_LENGTH, SHORT_KEYS

log = logging.getLogger(__name__)

PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")  # optuna.visualization.matplotlib


def short_value(value: Any) -> str:
    """A value in a run name: numbers to 3 significant digits (``1.15e-04``, ``0.25``), the rest as written."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).replace(" ", "").replace("'", "").replace('"', "")
    if isinstance(value, int):
        return str(value)
    if value != 0 and math.isfinite(value) and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.3g}"


def trial_run_name(preset: str, number: int, params: Mapping[str, Any]) -> str:
    """``cifar_resnet20-t07-lr1.15e-04-wd7.58e-03-bs32``: the trial's number makes it unique, so values can be
    short; their full digits stay the run's params."""
    parts = [str(params.get("model", preset)), f"t{number:02d}"]
    for key, value in params.items():
        bare = key.lstrip("+~")
        if bare == "model":
            continue
        if "/" in bare or bare in GROUPS:  # a config group's choice: its name says it
            parts.append(short_value(value))
        else:
            parts.append(SHORT_KEYS.get(bare, bare.rsplit(".", 1)[-1]) + short_value(value))
    return "-".join(parts)[:MAX_LENGTH]


def params_line(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={short_value(value)}" for key, value in params.items())


def counts(trials: Sequence[Any], interrupted_attr: str) -> Dict[str, int]:
    """Trials by outcome: finished, pruned, failed, and interrupted (failed by a stop, asked again)."""
    from optuna.trial import TrialState

    found = {"finished": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            found["finished"] += 1
        elif t.state == TrialState.PRUNED:
            found["pruned"] += 1
        elif t.state == TrialState.FAIL:
            found["interrupted" if t.user_attrs.get(interrupted_attr) else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            found["running"] += 1
    return found


def trials_table(trials: Sequence[Any], metric: str, direction: str, runs: Mapping[int, Any], pruned_attr: str,
                 interrupted_attr: str) -> str:
    """One markdown row per trial, best first, then pruned, then failed."""
    from optuna.trial import TrialState

    order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    sign = -1.0 if direction == "minimize" else 1.0
    shown = [t for t in trials if t.state in order]
    shown.sort(key=lambda t: (order[t.state], -sign * (t.value if t.value is not None else -sign * math.inf),
                              t.number))
    lines = [f"| trial | state | {metric} | epochs | " + " | ".join(keys) + " | run |",
             "|---" * (len(keys) + 5) + "|"]
    for t in shown:
        state = {0: "finished", 1: "pruned", 2: "interrupted" if t.user_attrs.get(interrupted_attr) else "failed"}
        value = t.value if t.value is not None else _last(t)
        epochs = t.user_attrs.get(pruned_attr) or (max(t.intermediate_values) if t.intermediate_values else "")
        run = runs.get(t.number)
        lines.append(f"| {t.number} | {state[order[t.state]]} | {'' if value is None else f'{value:.4f}'} | "
                     f"{epochs} | " + " | ".join(short_value(t.params[k]) if k in t.params else "" for k in keys)
                     + f" | {run.info.run_name if run is not None else ''} |")
    return "\n".join(lines)


def best_lines(best: Optional[Any], metric: str, direction: str, run: Optional[Any]) -> List[str]:
    """The best trial first: its value, its run, each of its values in full."""
    if best is None:
        return ["best trial: none finished yet"]
    where = f"run {run.info.run_name} ({run.info.run_id})" if run is not None else "its run is not in MLflow"
    return [f"best trial {best.number}: {metric} {best.value:.4f} ({direction}); {where}",
            *(f"  {key} = {value!r}" for key, value in best.params.items())]


def description(best: Optional[Any], metric: str, run: Optional[Any], tally: Mapping[str, int], table: str,
                study: str) -> str:
    """The parent's description in the MLflow UI: the best trial first, then the tally and the table."""
    head = (f"**best trial {best.number}: {metric} {best.value:.4f}** ({params_line(best.params)})"
            + (f", run {run.info.run_name}" if run is not None else "") if best is not None
            else "**no trial finished yet**")
    return "\n\n".join([head, tally_line(tally) + f" in Optuna study `{study}`", table])


def tally_line(tally: Mapping[str, int]) -> str:
    done = tally["finished"] + tally["pruned"] + tally["failed"]
    again = f"; {tally['interrupted']} interrupted and asked again" if tally["interrupted"] else ""
    return (f"{done} trials: {tally['finished']} finished, {tally['pruned']} pruned, {tally['failed']} failed"
            + again)


def log_plots(study: Any, client: Any, run_id: str) -> List[str]:
    """Optuna's optimisation history, parameter importances and parallel coordinates, as PNGs under ``plots/``
    of the parent run; a plot the trials cannot make yet (too few finished) is left out."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as plots

    made = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is experimental in Optuna's terms
        for name in PLOTS:
            try:
                axes = getattr(plots, f"plot_{name}")(study)
                figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
                figure.set_size_inches(8, 5)
                path = Path(tmp) / f"{name}.png"
                figure.savefig(path, dpi=80, bbox_inches="tight")
                plt.close(figure)
            except Exception as exc:  # e.g. importances need two finished trials
                log.info("plot %s left out: %s", name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            client.log_artifact(run_id, str(path), "plots")
            made.append(f"plots/{name}.png")
    return made


def _last(trial: Any) -> Optional[float]:
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def write_results(sweep_dir: str, study: str, storage: str, best: Optional[Any], direction: str) -> None:
    """``optimization_results.yaml`` in the multirun folder, as Hydra's Optuna sweeper writes it."""
    from omegaconf import OmegaConf

    results = {"name": "optuna", "study": study, "storage": storage, "direction": direction,
               "best_params": dict(best.params) if best is not None else None,
               "best_value": best.value if best is not None else None,
               "best_trial": best.number if best is not None else None}
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), Path(sweep_dir) / "optimization_results.yaml")
