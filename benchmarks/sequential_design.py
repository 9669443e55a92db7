"""What a seeds-until-resolved sweep (``hydra/sweeper=until_resolved``) costs and how often it is wrong, by simulating
its own decision rule on synthetic seeds; and a design calculator for your own means, spread, margin and budget.

Every simulated sweep runs the sweeper's rule (``compare/rule.py``: the decisions of ``Sequential.decide`` with
``next_round`` and ``stop_reason``, vectorised; ``tests/compare/test_forecast.py`` holds the two together): looks at
``first``, ``first + per_round``, ... seeds a group up to ``max_seeds``, seeds only for groups of unresolved pairs.
Seeds are normal around each group's mean with sd ``--sd``. No training, no MLflow.

    python benchmarks/sequential_design.py --json          # the design's figures (10,000 sweeps a rate, ~7 min)
    python benchmarks/sequential_design.py --means 1.6,1.6,0,0 --minutes-per-run 1.3   # what your sweep will cost

Without ``--means`` it measures, with sd 1 point, margin 1 point, level 0.05, looks at 3, 4, ..., 30 seeds:

- ``fwer_different``: 4 equal groups; the share of sweeps with any "different" (a false one);
- ``fwer_equal``: means +1, 0, 0, 0; the share calling any of the 3 pairs one margin apart "practically equal";
- the README's digits case, means +1.6, +1.6, 0, 0 (ResNet-20, ResNet-32, ResNet-44, ResNet-56):
  ``p_all_resolved_by_max`` (every pair resolved within 30 seeds), ``median_seeds_first_pair`` (seeds a group at
  which ResNet-20 vs ResNet-56 is resolved; unresolved counts as never), ``p_resolved_gap`` (at 10 seeds, the
  forecast's mean chance of a full verdict, ``compare/forecast.py``, minus the share that got one; absolute) and
  ``coverage_q80_resolved`` (among sweeps that got one, the share that needed at most the forecast's 80th
  percentile of runs, made at 10 seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Sequence

import numpy as np

from resnet_lab.compare.forecast import forecast_many
from resnet_lab.compare.rule import DIFFERENT, EQUAL, BatchRule
from resnet_lab.compare.sequential import Design

README_MEANS = (1.6, 1.6, 0.0, 0.0)
README_NAMES = ("ResNet-20", "ResNet-32", "ResNet-44", "ResNet-56")


def draw(means: Sequence[float], sd: float, sweeps: int, max_seeds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(means, float)[None, :, None] + sd * rng.standard_normal((sweeps, len(means), max_seeds))


def seeds_to_resolve(outcome, design: Design, pair: int) -> np.ndarray:
    """Per sweep, the seeds a group at which ``pair`` was resolved (inf: never)."""
    looks = np.array(design.looks(), float)
    at = outcome.resolved_at[:, pair]
    return np.where(at >= 0, looks[np.maximum(at, 0)], math.inf)


def _forecast_chunk(job) -> List[tuple]:
    states, design, min_effect, futures, seed = job
    return [(f.chance, f.runs_q80) for f in forecast_many(states, design, min_effect, futures=futures, seed=seed)]


def forecast_check(data: np.ndarray, outcome, design: Design, min_effect: float, at: int, futures: int,
                   workers: int, seed: int) -> Dict[str, float]:
    """The forecast made at ``at`` seeds a group against what each sweep then did."""
    looks = design.looks()
    j = next(i for i, n in enumerate(looks) if n >= at)
    running = outcome.stop_look >= j  # still going after the look at ``at`` seeds (or stopping there)
    predicted = np.ones(len(data))  # a sweep that stopped earlier had every pair resolved
    q80 = np.zeros(len(data))
    names = [str(g) for g in range(data.shape[1])]
    states, index = [], np.flatnonzero(running)
    for s in index:
        seeds = outcome.seeds_by_look[s, j]
        states.append({g: data[s, i, :seeds[i]] for i, g in enumerate(names)})
    chunk = 250
    jobs = [(states[i:i + chunk], design, min_effect, futures, seed + i) for i in range(0, len(states), chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = [r for part in pool.map(_forecast_chunk, jobs) for r in part]
    for s, (chance, runs_q80) in zip(index, results):
        predicted[s] = chance
        q80[s] = math.inf if runs_q80 is None else runs_q80
    more = outcome.runs - outcome.seeds_by_look[:, j].sum(axis=1)
    resolved = outcome.all_resolved
    return {"predicted_chance_at": float(predicted.mean()), "observed_share": float(resolved.mean()),
            "p_resolved_gap": float(abs(predicted.mean() - resolved.mean())),
            "coverage_q80_resolved": float(np.mean(more[resolved] <= q80[resolved])),
            "forecast_at_seeds": looks[j]}


def evaluate(args) -> Dict[str, float]:
    """The design's figures, as the module docstring lists them."""
    design = Design(args.first, args.per_round, args.max_seeds, args.level, args.spending)
    rule = BatchRule(design, args.min_effect, 4)
    null = rule.run(draw([0, 0, 0, 0], args.sd, args.sweeps, args.max_seeds, args.seed))
    edge = rule.run(draw([args.min_effect, 0, 0, 0], args.sd, args.sweeps, args.max_seeds, args.seed + 1))
    readme_data = draw([m * args.sd for m in README_MEANS], args.sd, args.sweeps, args.max_seeds, args.seed + 2)
    readme = rule.run(readme_data)
    first_pair = rule.pairs.index((0, 3))  # ResNet-20 vs ResNet-56, 1.6 points apart
    seeds_first = seeds_to_resolve(readme, design, first_pair)
    figures = {
        "fwer_different": float(((null.verdict & DIFFERENT) > 0).any(axis=1).mean()),
        "fwer_equal": float(((edge.verdict[:, :3] & EQUAL) > 0).any(axis=1).mean()),
        "p_all_resolved_by_max": float(readme.all_resolved.mean()),
        "median_seeds_first_pair": float(np.median(seeds_first)),
        "q80_seeds_first_pair": float(np.quantile(seeds_first, 0.8)),
        "median_runs": float(np.median(readme.runs)),
    }
    if not args.skip_forecast:
        figures.update(forecast_check(readme_data, readme, design, args.min_effect, args.forecast_at, args.futures,
                                      args.workers, args.seed + 3))
    figures.update({"sweeps": args.sweeps, "futures": args.futures, "spending": args.spending, "sd": args.sd,
                    "min_effect": args.min_effect, "max_seeds": args.max_seeds, "first": args.first,
                    "per_round": args.per_round, "level": args.level})
    return figures


def calculate(args) -> Dict[str, object]:
    """The design calculator: what a sweep with these true means will likely cost."""
    means = [float(x) for x in args.means.split(",")]
    names = args.names.split(",") if args.names else [f"g{i + 1}" for i in range(len(means))]
    if len(names) != len(means):
        raise SystemExit(f"--names has {len(names)} names but --means has {len(means)} values")
    design = Design(args.first, args.per_round, args.max_seeds, args.level, args.spending)
    rule = BatchRule(design, args.min_effect, len(means))
    outcome = rule.run(draw(means, args.sd, args.sweeps, args.max_seeds, args.seed))
    runs = outcome.runs[outcome.all_resolved]
    pairs = {}
    for p, (a, b) in enumerate(rule.pairs):
        at = seeds_to_resolve(outcome, design, p)
        pairs[f"{names[a]} vs {names[b]}"] = {
            "p_resolved": float(np.isfinite(at).mean()),
            "median_seeds": float(np.median(at)),
            "verdicts": {v: float(np.mean(outcome.verdict[:, p] == code)) for v, code in
                         (("different", 1), ("practically equal", 2), ("different, inside the margin", 3),
                          ("unresolved", 0))}}
    result: Dict[str, object] = {"p_all_resolved_by_max": float(outcome.all_resolved.mean()),
                                 "median_runs_if_resolved": float(np.median(runs)) if runs.size else None,
                                 "q80_runs_if_resolved": float(np.quantile(runs, 0.8)) if runs.size else None,
                                 "median_runs": float(np.median(outcome.runs)), "pairs": pairs,
                                 "sweeps": args.sweeps}
    if args.minutes_per_run and runs.size:
        result["median_minutes_if_resolved"] = float(np.median(runs)) * args.minutes_per_run
        result["q80_minutes_if_resolved"] = float(np.quantile(runs, 0.8)) * args.minutes_per_run
    return result


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--means", help="design calculator: the groups' true means, comma-separated (metric units)")
    parser.add_argument("--names", help="the groups' names, comma-separated")
    parser.add_argument("--sd", type=float, default=1.0, help="the seeds' sd in each group (metric units)")
    parser.add_argument("--min-effect", type=float, default=1.0, help="the margin (hydra.sweeper.min_effect)")
    parser.add_argument("--max-seeds", type=int, default=30)
    parser.add_argument("--first", type=int, default=3, help="seeds a group in round 1")
    parser.add_argument("--per-round", type=int, default=1, help="hydra.sweeper.seeds_per_round")
    parser.add_argument("--level", type=float, default=0.05)
    parser.add_argument("--spending", default="obrien_fleming")
    parser.add_argument("--sweeps", type=int, default=10_000, help="simulated sweeps a rate")
    parser.add_argument("--futures", type=int, default=200, help="futures each forecast simulates")
    parser.add_argument("--forecast-at", type=int, default=10, help="seeds a group at which the forecast is made")
    parser.add_argument("--skip-forecast", action="store_true", help="the rates and costs only (seconds)")
    parser.add_argument("--minutes-per-run", type=float, help="design calculator: minutes a run takes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(list(argv) or None)
    started = time.perf_counter()
    result = calculate(args) if args.means else evaluate(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")


if __name__ == "__main__":
    main(sys.argv[1:])
