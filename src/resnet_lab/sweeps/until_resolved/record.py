"""Each round's record: a line in the terminal, metrics (step = round) and tags on the parent run, and the rounds
table (``rounds.json``, ``rounds.md``) that a rerun reads back to go on where the last one stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from resnet_lab import tracking
from resnet_lab.compare.forecast import Forecast, forecast
from resnet_lab.compare.sequential import UNRESOLVED, Decision, Design
from resnet_lab.sweeps.parent import ParentRun

TAG_ROUNDS = "resnet_lab.rounds"
TAG_VERDICT = "resnet_lab.verdict_so_far"
TAG_STILL_NEEDED = "resnet_lab.still_needed"  # the forecast after the latest round, in words
ROUNDS_FILE = "rounds.json"


class RoundLog:
    """The rounds so far, as the parent run keeps them."""

    def __init__(self, parent: ParentRun, names: Mapping[str, str]) -> None:
        self.parent, self.names = parent, names
        self.rounds: List[Dict[str, Any]] = self._logged() if parent.reopened else []
        self.ahead: Optional[Forecast] = None  # the latest round's forecast: the verdict at the end says the same

    def _logged(self) -> List[Dict[str, Any]]:
        try:
            path = self.parent.client.download_artifacts(self.parent.run_id, ROUNDS_FILE)
        except Exception:  # no round recorded yet
            return []
        return json.loads(Path(path).read_text())

    def adopted(self) -> List[str]:
        return [a for r in self.rounds for a in r.get("adopted", [])]

    def record(self, number: int, jobs: int, seconds: float, decision: Decision, values: Mapping[str, List[float]],
               design: Design, min_effect: float, adopted: Sequence[str], stop: Optional[str]) -> Dict[str, Any]:
        """Log the round to the parent, with the forecast of what is still needed from here (``compare.forecast``:
        the sweep's own rule run forward at this round's pace), and return its entry (for ``progress_line``)."""
        counts = {g: len(v) for g, v in values.items()}
        pace = seconds / jobs if jobs else None  # this round's wall seconds per job, whatever the launcher
        ahead = None
        if not decision.done and all(n >= 2 for n in counts.values()):
            named = {self.names.get(g, g): v for g, v in values.items()}  # the groups as the verdict names them
            ahead = forecast(named, design, min_effect, seconds_per_run=pace)
        self.ahead = ahead
        needed_runs = 0 if ahead is None else ahead.runs_median
        before = set(self.adopted())
        entry = {"round": number, "jobs": jobs, "seconds": round(seconds, 1), "runs": sum(counts.values()),
                 "seeds": {self.names.get(g, g): n for g, n in counts.items()},
                 "resolved": decision.resolved, "pairs": len(decision.pairs),
                 "pair_verdicts": {f"{self.names.get(p.a, p.a)} vs {self.names.get(p.b, p.b)}": p.verdict
                                   for p in decision.pairs},
                 "verdict": self.short(decision), "needed_runs": needed_runs,
                 "needed_runs_q80": None if ahead is None else ahead.runs_q80,
                 "chance_resolved": None if ahead is None else round(ahead.chance, 3),
                 "needed_minutes": _round(None if ahead is None else ahead.minutes_median),
                 "needed_minutes_q80": _round(None if ahead is None else ahead.minutes_q80),
                 "still_needed": "none" if ahead is None else ahead.line(), "stop": stop,
                 "adopted": [a for a in adopted if a not in before]}
        client, run_id = self.parent.client, self.parent.run_id
        if number <= len(self.rounds):  # a rerun with nothing left to train: the last round's stop, once more
            entry = self.rounds[number - 1] = {**self.rounds[number - 1], "stop": stop}
        else:
            self.rounds.append(entry)
            run = tracking.Run(client, run_id)
            run.log_metrics({"round_runs": entry["runs"], "round_pairs_resolved": decision.resolved,
                             "round_seconds": seconds, "round_seeds_min": min(counts.values() or [0]),
                             **({"round_needed_runs": needed_runs} if needed_runs is not None else {}),
                             **({"round_chance_resolved": ahead.chance} if ahead is not None else {})}, step=number)
            run.set_tags({TAG_ROUNDS: len(self.rounds), TAG_VERDICT: entry["verdict"][:4000],
                          TAG_STILL_NEEDED: entry["still_needed"][:4000]})
        client.log_text(run_id, json.dumps(self.rounds, indent=1), ROUNDS_FILE)
        client.log_text(run_id, rounds_table(self.rounds) + "\n", "rounds.md")
        return entry

    def short(self, decision: Decision) -> str:
        parts = []
        for p in decision.pairs:
            a, b = self.names.get(p.a, p.a), self.names.get(p.b, p.b)
            if p.verdict == UNRESOLVED:
                parts.append(f"{a} ? {b}")
            elif p.verdict == "practically equal":
                parts.append(f"{a} ≈ {b}")
            else:
                high, low = (a, b) if p.diff > 0 else (b, a)
                parts.append(f"{high} > {low}")
        return f"{decision.resolved} of {len(decision.pairs)} pairs resolved: " + "; ".join(parts)


def _round(minutes: Optional[float]) -> Optional[float]:
    return None if minutes is None else round(minutes, 1)


def progress_line(entry: Mapping[str, Any], elapsed: float) -> str:
    """One line a round: seeds trained, pairs resolved, and what is still needed (the forecast, in words)."""
    seeds = sorted(set(entry["seeds"].values()))
    span = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    stop = f"; stopping: {entry['stop']}" if entry.get("stop") else ""
    return (f"round {entry['round']}: {entry['jobs']} jobs in {entry['seconds'] / 60:.1f} min, {entry['runs']} runs "
            f"({span} seeds a group), {entry['resolved']} of {entry['pairs']} pairs resolved; still needed: "
            f"{entry.get('still_needed', 'none')}; {elapsed / 60:.1f} min so far{stop}")


def rounds_table(rounds: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| round | jobs | minutes | runs | seeds a group | pairs resolved | verdict so far | chance of a full "
             "verdict | more runs (median, 80%) | stop |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        seeds = ", ".join(f"{g} {n}" for g, n in r["seeds"].items())
        lines.append(f"| {r['round']} | {r['jobs']} | {r['seconds'] / 60:.1f} | {r['runs']} | {seeds} | "
                     f"{r['resolved']} of {r['pairs']} | {r['verdict']} | {_share(r.get('chance_resolved'))} | "
                     f"{_runs(r)} | {r.get('stop') or ''} |")
    return "\n".join(lines)


def _share(chance: Optional[float]) -> str:
    return "" if chance is None else f"{100 * chance:.0f}%"


def _runs(entry: Mapping[str, Any]) -> str:
    if entry.get("needed_runs") is None:
        return ""
    return f"{entry['needed_runs']}, {entry.get('needed_runs_q80', '?')}"
