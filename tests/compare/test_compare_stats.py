"""Repeats in resnet-lab-compare: runs that differ only in seed are grouped, with mean, sd and 95% intervals."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
from helpers.configs import compose_config

from resnet_lab import tracking
from resnet_lab.compare.stats import summarize, t_quantile
from resnet_lab.errors import ConfigError
from resnet_lab.tracking import identity

# name, depth, test accuracy per seed. 20 and 32 overlap; 44 (a NaN seed) and the older 56 stand apart.
TAGGED = [
    ("cifar_resnet20", 20, [0.90, 0.92, 0.94]),
    ("cifar_resnet32", 32, [0.93, 0.94, 0.95]),
    ("cifar_resnet44", 44, [0.990, 0.992, math.nan]),
]
OLDER = ("cifar_resnet56", 56, [0.70, 0.71])  # logged before the group hash tag existed: grouped by params
HANDMADE = ("handmade", 8, 0.50)  # no params at all: its own group


def config_of(preset: str, seed: int) -> Dict[str, Any]:
    """A small stand-in for a resolved training config; the keys that must not split a group vary by seed."""
    return {"model": {"name": preset, "reference": {"params": seed}}, "seed": seed,
            "trainer": {"epochs": 2, "verbose": seed % 2}, "data": {"name": "digits", "path": f"/data/{seed}"},
            "tracking": {"run_name": f"{preset}-seed{seed}"}}


def log_run(client, experiment: str, name: str, depth: int, accuracy: float, params: Dict[str, Any],
            tags: Dict[str, str]) -> str:
    run = tracking.Run(client, client.create_run(experiment, run_name=name, tags={
        tracking.TAG_ROLE: "train", "preset": name.split("-")[0], "depth": str(depth),
        "params_total": str(depth * 1000), "flops": str(depth * 10**6), **tags}).info.run_id)
    if params:
        run.log_params(params)
    run.log_metrics({"test_accuracy": accuracy, "best_val_accuracy": accuracy + 0.01, "train_seconds": 10.0 * depth,
                     "train_images_per_s": 1000.0}, step=1)
    client.set_terminated(run.run_id, "FINISHED")
    return run.run_id


@pytest.fixture
def repeats_store(tmp_path, tmp_store):
    """Three presets with their seeds tagged as training tags them, an older pair by params, one bare run."""
    client = tracking.client_for(tmp_store)
    experiment = tracking.experiment_id(client, "depth", tmp_store)
    ids: Dict[str, List[str]] = {}
    for preset, depth, accuracies in TAGGED:
        for seed, accuracy in enumerate(accuracies, start=1):
            cfg = config_of(preset, seed)
            tags = {tracking.TAG_GROUP_HASH: identity.group_hash(cfg), tracking.TAG_CONFIG_HASH: identity.config_hash(cfg)}
            params = {**tracking.flatten(cfg), "arch.depth": depth}
            ids.setdefault(preset, []).append(log_run(client, experiment, f"{preset}-seed{seed}", depth, accuracy,
                                                      params, tags))
    preset, depth, accuracies = OLDER
    for seed, accuracy in enumerate(accuracies, start=1):
        params = {**tracking.flatten(config_of(preset, seed)), "arch.depth": depth}
        ids.setdefault(preset, []).append(log_run(client, experiment, preset, depth, accuracy, params, {}))
    name, depth, accuracy = HANDMADE
    ids[name] = [log_run(client, experiment, name, depth, accuracy, {}, {})]
    return tmp_path, ids


def compare_here(tmp_path: Path, monkeypatch, overrides: List[str]) -> str:
    from resnet_lab.compare.comparison import comparison

    monkeypatch.chdir(tmp_path)
    return comparison(compose_config("compare", ["tracking.experiment=depth", *overrides])).text


def shown(accuracies: List[float]) -> str:
    s = summarize(accuracies)
    return f"{s.mean:.4f} ± {s.sd:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]"


def test_known_numbers():
    s = summarize([0.90, 0.92, 0.94])
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert (s.n, s.mean, s.sd) == (3, pytest.approx(0.92), pytest.approx(0.02))
    assert (s.ci_low, s.ci_high) == (pytest.approx(0.92 - half, abs=1e-6), pytest.approx(0.92 + half, abs=1e-6))
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-6)
    one = summarize([0.9])
    assert (one.n, one.mean, one.sd, one.ci_low, one.ci_high, one.has_interval) == (1, 0.9, None, None, None, False)
    assert summarize([0.90, math.nan, None, 0.94]) == summarize([0.90, 0.94])
    assert summarize([math.nan]).n == 0 and summarize([]).mean is None


def test_text_groups_repeats_and_ends_on_the_pairwise_verdict(repeats_store, monkeypatch):
    tmp_path, _ = repeats_store
    out = compare_here(tmp_path, monkeypatch, ["compare.metrics=[test_accuracy]"])
    table, note = out.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split() == ["run", "status", "preset", "depth", "params", "flops", "n", "test_accuracy",
                                "train_seconds", "images_per_s"]
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}
    assert list(rows) == ["handmade", "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56"]
    assert rows["handmade"][1:] == ["FINISHED", "handmade", "8", "8k", "8M", "1", "0.5000 (n=1)", "80.0", "1000.0"]
    for preset, depth, accuracies in [*TAGGED[:2], OLDER]:
        assert rows[preset][3:] == [str(depth), f"{depth}k", f"{depth}M", str(len(accuracies)), shown(accuracies),
                                    f"{10.0 * depth:.1f}", "1000.0"]
    assert rows["cifar_resnet44"][6:8] == ["3", shown([0.990, 0.992]) + " (n=2)"]  # the NaN seed is left out
    verdict = note.splitlines()
    assert verdict[0] == ("test_accuracy on this test set: Welch's t per pair, Holm-adjusted, equivalence margin "
                          "±1 point (compare.min_effect)")
    assert verdict[1] == ("  cifar_resnet20 vs cifar_resnet32: no difference detected, -6.2 to +2.2 points; resolving "
                          "it at a 1-point margin needs about 21 seeds a group (about 2.6 h more training at these "
                          "runs' speed)")
    assert "  cifar_resnet44 > cifar_resnet56 by 28.6 points [23.2, 34.0], Holm p 0.033" in verdict
    assert verdict[-2:] == ["  5 of 6 pairs resolved",
                            "test_accuracy, no test (one run; more seeds give one, e.g. seed=1,2,3): handmade"]


def test_markdown_carries_the_verdict_and_the_pairwise_table(repeats_store, monkeypatch):
    tmp_path, _ = repeats_store
    out = compare_here(tmp_path, monkeypatch, ["compare.format=markdown"])
    blocks = out.split("\n\n")
    assert blocks[0].splitlines()[0] == ("| run | status | preset | depth | params | flops | n | test_accuracy | "
                                         "best_val_accuracy | train_seconds | images_per_s |")
    assert f"| cifar_resnet20 | FINISHED | cifar_resnet20 | 20 | 20k | 20M | 3 | {shown(TAGGED[0][2])} |" in blocks[0]
    assert blocks[1].startswith("test_accuracy on this test set: Welch's t per pair")
    assert blocks[2].splitlines()[0].startswith("- cifar_resnet20 vs cifar_resnet32: no difference detected")
    assert blocks[3] == "test_accuracy, no test (one run; more seeds give one, e.g. seed=1,2,3): handmade"
    assert blocks[4].splitlines()[0] == ("| pair | n | difference [95%] | Holm p | P(a run of A beats B) [95%] | "
                                         "on new data | verdict |")
    assert "| cifar_resnet32 vs cifar_resnet56 | 3, 2 | +23.5 [+21.0, +26.0] | 0.00061 | 1.00 [1.00, 1.00] | - | " \
           "different |" in blocks[4]


def test_csv_and_json_carry_raw_statistics_and_member_runs(repeats_store, monkeypatch):
    tmp_path, ids = repeats_store
    rows = list(csv.DictReader(io.StringIO(compare_here(tmp_path, monkeypatch, ["compare.format=csv"]))))
    assert [r["run"] for r in rows] == ["handmade", "cifar_resnet20", "cifar_resnet32", "cifar_resnet44",
                                        "cifar_resnet56"]
    by_name = {r["run"]: r for r in rows}
    for preset, _, accuracies in [*TAGGED, OLDER]:
        row, s = by_name[preset], summarize(accuracies)
        assert int(row["n"]) == len(accuracies) and set(row["run_ids"].split()) == set(ids[preset])
        for stat in ("mean", "sd", "ci_low", "ci_high"):
            assert float(row[f"test_accuracy_{stat}"]) == pytest.approx(getattr(s, stat))
        assert float(row["best_val_accuracy_mean"]) == pytest.approx(s.mean + 0.01)
    assert by_name["handmade"]["test_accuracy_sd"] == "" and by_name["handmade"]["test_accuracy_ci_low"] == ""
    shown_json = json.loads(compare_here(tmp_path, monkeypatch, ["compare.format=json"]))
    groups, pairs = shown_json["groups"], shown_json["pairs"]
    assert len(pairs) == 6 and shown_json["verdict"][-2] == "  5 of 6 pairs resolved"
    twenty_vs_32 = next(p for p in pairs if (p["a"], p["b"]) == ("cifar_resnet20", "cifar_resnet32"))
    assert twenty_vs_32["test_set_diff"] == pytest.approx(-0.02) and twenty_vs_32["verdict"] == "unresolved"
    assert twenty_vs_32["seeds_needed"] == 21 and twenty_vs_32["new_data_note"] == "no per-example outcomes logged"
    pair_rows = list(csv.DictReader(io.StringIO(compare_here(tmp_path, monkeypatch, ["compare.format=csv",
                                                                                      "compare.table=pairs"]))))
    assert [(r["a"], r["b"], r["verdict"]) for r in pair_rows][-1] == ("cifar_resnet44", "cifar_resnet56", "different")
    group = next(g for g in groups if g["run"] == "cifar_resnet32")
    assert group["n"] == 3 and sorted(group["run_ids"]) == sorted(ids["cifar_resnet32"])
    assert group["test_accuracy_mean"] == pytest.approx(0.94) and group["test_accuracy_sd"] == pytest.approx(0.01)
    assert group["train_seconds"] == pytest.approx(320.0) and group["status"] == "FINISHED"
    assert next(g for g in groups if g["run"] == "handmade")["test_accuracy_ci_high"] is None


def test_group_none_gives_one_row_per_run(repeats_store, monkeypatch):
    tmp_path, ids = repeats_store
    lines = compare_here(tmp_path, monkeypatch, ["compare.group=none"]).splitlines()
    assert lines[0].split() == ["run", "status", "preset", "depth", "params", "flops", "test_accuracy",
                                "best_val_accuracy", "train_seconds", "images_per_s"]
    assert len(lines) == 1 + sum(len(v) for v in ids.values())
    assert [line.split()[0] for line in lines[1:4]] == ["handmade", "cifar_resnet20-seed1", "cifar_resnet20-seed2"]


def test_sorting_by_a_metric_sorts_groups_by_mean(repeats_store, monkeypatch):
    tmp_path, _ = repeats_store
    out = compare_here(tmp_path, monkeypatch, ["compare.sort=test_accuracy", "compare.descending=true",
                                               "compare.format=csv"])
    assert [r["run"] for r in csv.DictReader(io.StringIO(out))] == [
        "cifar_resnet44", "cifar_resnet32", "cifar_resnet20", "cifar_resnet56", "handmade"]


def test_grouped_plots_and_a_parent_runs_artifacts(repeats_store, monkeypatch):
    from resnet_lab.compare.comparison import log_to_run

    tmp_path, ids = repeats_store
    compare_here(tmp_path, monkeypatch, ["compare.plot_dir=plots"])
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["accuracy_vs_depth.png", "accuracy_vs_params.png", "accuracy_vs_train_time.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)

    client = tracking.client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.create_run(client.get_experiment_by_name("depth").experiment_id, run_name="sweep").info.run_id
    runs = [client.get_run(i) for group in ids.values() for i in group]
    log_to_run(client, parent, runs, ["test_accuracy"], "test_accuracy")
    names = {a.path for a in client.list_artifacts(parent)} | {a.path for a in client.list_artifacts(parent, "plots")}
    assert names >= {"comparison.md", "comparison.csv", "comparison_runs.md", "comparison_runs.csv",
                     "plots/accuracy_vs_depth.png", "plots/accuracy_vs_params.png", "plots/accuracy_vs_train_time.png"}
    read = lambda name: Path(client.download_artifacts(parent, name, str(tmp_path))).read_text()  # noqa: E731
    assert "- cifar_resnet20 vs cifar_resnet32: no difference detected, " in read("comparison.md")
    assert "| cifar_resnet20 vs cifar_resnet32 | 3, 3 |" in read("pairwise.md")
    pairs = list(csv.DictReader(io.StringIO(read("pairwise.csv"))))
    assert [(p["a"], p["b"], p["verdict"]) for p in pairs][0] == ("cifar_resnet20", "cifar_resnet32", "unresolved")
    assert len(read("comparison.csv").splitlines()) == 1 + len(ids)
    assert len(read("comparison_runs.csv").splitlines()) == 1 + len(runs)
    assert "cifar_resnet20-seed3" in read("comparison_runs.md") and "overlap" not in read("comparison_runs.md")


@pytest.mark.parametrize("overrides, message", [
    (["compare.group=seeds"], r"^compare\.group='seeds' is not allowed: one of 'seed', 'none'$"),
    (["compare.min_effect=0"], r"^compare\.min_effect=0\.0 is not allowed: a positive margin in the metric's units"),
    (["compare.scope=train"], r"^compare\.scope='train' is not allowed: one of 'test_set', 'new_data'$"),
    (["compare.table=pairs", "compare.group=none"], r"^compare\.table='pairs' is not allowed: 'groups' unless "),
])
def test_a_bad_group_is_one_line_naming_the_key(repeats_store, monkeypatch, overrides, message):
    tmp_path, _ = repeats_store
    with pytest.raises(ConfigError, match=message):
        compare_here(tmp_path, monkeypatch, overrides)
