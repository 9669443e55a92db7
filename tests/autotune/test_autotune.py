"""Choosing precision and XLA: the candidates, the decision on fabricated timings, the cache, and one
real probe end to end."""

from __future__ import annotations

import json
import multiprocessing
import types

import pytest
from helpers.configs import compose_config
from helpers.stores import runs_in
from mlflow.tracking import MlflowClient

from resnet_lab.autotune import probe, timing
from resnet_lab.autotune import settings as autotune
from resnet_lab.autotune.settings import Measurement, Setting
from resnet_lab.runtime.machine import Hardware
from resnet_lab.training.shared_setup import SWITCH

AVX2 = Hardware("tensorflow", None, bf16=False)
AVX512_BF16 = Hardware("tensorflow", None, bf16=True)
H100 = Hardware("tensorflow", "NVIDIA H100", bf16=True)
T4 = Hardware("tensorflow", "Tesla T4", bf16=False)
JAX_CPU = Hardware("jax", None, bf16=True)
TORCH_GPU = Hardware("torch", "NVIDIA H100", bf16=True)

BF16_OFF, BF16_ON = Setting("mixed_bf16", False), Setting("mixed_bf16", True)
FP32_OFF, FP32_ON = Setting("fp32", False), Setting("fp32", True)


# -- which settings exist, and which one holds without a probe -------------------------------------


@pytest.mark.parametrize("hardware, expected", [
    (AVX2, [FP32_OFF, FP32_ON]),  # no bf16 where it would be emulated
    (AVX512_BF16, [BF16_OFF, BF16_ON, FP32_OFF, FP32_ON]),
    (H100, [BF16_ON, BF16_OFF, FP32_ON, FP32_OFF]),  # Keras compiles with XLA on a GPU
    (T4, [FP32_ON, FP32_OFF, Setting("mixed_fp16", True), Setting("mixed_fp16", False)]),
    (JAX_CPU, [Setting("mixed_bf16", True), FP32_ON]),  # JAX without XLA runs op by op
    (TORCH_GPU, [BF16_OFF, FP32_OFF]),  # eager, as Keras' default; torch.compile is opt-in
])
def test_auto_and_null_allow_every_setting_the_hardware_computes_natively_static_first(hardware, expected):
    assert autotune.candidates(hardware, "auto", None, deterministic=False) == expected
    assert autotune.static_choice(hardware, "auto", None, deterministic=False) == expected[0]


def test_explicit_settings_leave_only_themselves():
    assert autotune.candidates(AVX512_BF16, "fp32", None, False) == [FP32_OFF, FP32_ON]
    assert autotune.candidates(AVX512_BF16, "auto", True, False) == [BF16_ON, FP32_ON]
    assert autotune.candidates(AVX2, "mixed_bf16", False, False) == [BF16_OFF]  # as asked, emulated or not


def test_deterministic_ops_and_tf_distribute_keep_xla_off_on_tensorflow():
    assert autotune.candidates(H100, "auto", None, deterministic=True) == [BF16_OFF, FP32_OFF]
    assert autotune.candidates(H100, "auto", None, False, distributed=True) == [BF16_OFF, FP32_OFF]


# -- the decision on fabricated timings ------------------------------------------------------------


def measured(*figures):
    return [Measurement(setting, speed, setup) for setting, speed, setup in figures]


def test_the_fastest_wins_and_a_near_tie_keeps_the_static_choice():
    timings = measured((BF16_OFF, 84.1, 3.0), (BF16_ON, 49.7, 20.0), (FP32_OFF, 59.0, 3.0), (FP32_ON, 49.1, 20.0))
    assert autotune.fastest(timings, static=FP32_OFF) == BF16_OFF
    assert autotune.fastest(measured((FP32_OFF, 100.0, 1), (FP32_ON, 102.0, 9)), static=FP32_OFF) == FP32_OFF
    assert autotune.fastest(measured((FP32_OFF, 100.0, 1), (FP32_ON, 110.0, 9)), static=FP32_OFF) == FP32_ON


def test_a_run_too_short_to_repay_a_probe_skips_it():
    assert "too few" in autotune.too_short(autotune.MIN_STEPS - 1)
    assert autotune.too_short(autotune.MIN_STEPS) is None


def test_the_budget_is_a_tenth_of_the_estimated_training_and_the_cap():
    first = measured((BF16_OFF, 640.0, 2.0))  # 0.1 s per step of 64 images
    # 10,000 steps: 1,000 s of training, a budget of 100 s. XLA's set-up is guessed at 3x the graph's.
    assert autotune.next_within_budget(BF16_ON, first, 0.0, 10_000, 64, max_seconds=120) is None
    over_share = autotune.next_within_budget(BF16_ON, first, 0.0, 500, 64, max_seconds=120)
    assert "a tenth of the run's estimated 50 s of training" in over_share
    over_cap = autotune.next_within_budget(BF16_ON, first, 0.0, 10_000, 64, max_seconds=5)
    assert "trainer.autotune_max_seconds=5" in over_cap
    spent = autotune.next_within_budget(FP32_OFF, first, 99.0, 10_000, 64, max_seconds=120)
    assert "would cost about 3 s more" in spent


class FakeModel:
    def __init__(self, setting):
        self.setting = setting


def fabricated_probe(monkeypatch, speeds, setup_s=1.0):
    """``timing.time_steps`` answering from a table: the decision logic without training anything."""
    built = []

    def time_steps(model, x, y, batch_size, seed):
        return {"first_step_s": setup_s, "images_per_s": speeds[model.setting], "steps_s": 0.1,
                "process_age_s": 5.0}

    def build(setting):
        built.append(setting)
        return FakeModel(setting)

    monkeypatch.setattr(timing, "time_steps", time_steps)
    return build, built


def run_probe(build, options, total_steps=100_000, max_seconds=120.0):
    return probe.probe(options, options[0], build, lambda m: m, None, None, 64, 0, total_steps, max_seconds)


def test_the_probe_times_every_candidate_and_hands_back_the_fastest_build(monkeypatch):
    options = autotune.candidates(AVX512_BF16, "auto", None, False)
    build, built = fabricated_probe(monkeypatch, {BF16_OFF: 84.1, BF16_ON: 49.7, FP32_OFF: 59.0, FP32_ON: 49.1})
    outcome = run_probe(build, options)
    assert built == options and outcome.complete
    assert outcome.decision.choice == BF16_OFF and outcome.built.setting == BF16_OFF
    assert outcome.decision.how == autotune.PROBED
    assert outcome.decision.tags()["autotune.candidates"] == (
        "mixed_bf16/xla_off 84.1, fp32/xla_off 59.0, mixed_bf16/xla_on 49.7, fp32/xla_on 49.1")


def test_the_probe_stops_when_the_next_candidate_would_not_pay_for_itself(monkeypatch):
    options = autotune.candidates(AVX512_BF16, "auto", None, False)
    build, built = fabricated_probe(monkeypatch, {BF16_OFF: 640.0, BF16_ON: 900.0, FP32_OFF: 1.0, FP32_ON: 1.0},
                                    setup_s=2.0)
    outcome = run_probe(build, options, total_steps=500)  # 50 s of training: 5 s for the probe
    assert built == [BF16_OFF] and not outcome.complete
    assert outcome.decision.how == autotune.STATIC and outcome.decision.choice == BF16_OFF
    assert "a probe would not pay for itself" in outcome.decision.reason


class Trainer(types.SimpleNamespace):
    precision = "auto"
    jit_compile = None
    deterministic = False
    distribution = "none"
    autotune = True
    autotune_max_seconds = 120.0
    autotune_cache = None


def choose(monkeypatch, tmp_path, trainer, hardware=AVX512_BF16, total_steps=100_000, signature=None):
    from resnet_lab.runtime import machine

    monkeypatch.setattr(machine, "hardware", lambda: hardware)
    build, built = fabricated_probe(monkeypatch, {BF16_OFF: 84.1, BF16_ON: 49.7, FP32_OFF: 59.0, FP32_ON: 49.1})
    trainer.autotune_cache = str(tmp_path)
    outcome = probe.choose(trainer, signature or {"batch_size": 64, "model": "a"}, build, lambda m: m, None,
                           None, 0, total_steps)
    return outcome, built


def test_explicit_settings_always_win_and_are_never_timed(monkeypatch, tmp_path):
    outcome, built = choose(monkeypatch, tmp_path, Trainer(precision="fp32", jit_compile=True))
    assert outcome.decision.choice == FP32_ON and outcome.decision.how == autotune.CONFIGURED
    assert built == [FP32_ON]


@pytest.mark.parametrize("change, reason", [
    ({"autotune": False}, "trainer.autotune=false"),
    ({"deterministic": True}, "trainer.deterministic=true"),
])
def test_without_autotune_or_with_deterministic_ops_the_static_choice_holds(monkeypatch, tmp_path, change, reason):
    outcome, built = choose(monkeypatch, tmp_path, Trainer(**change))
    assert outcome.decision.how == autotune.STATIC and reason in outcome.decision.reason
    assert built == [BF16_OFF]


def test_a_short_run_takes_the_static_choice_without_timing_anything(monkeypatch, tmp_path):
    outcome, built = choose(monkeypatch, tmp_path, Trainer(), total_steps=10)
    assert outcome.decision.how == autotune.STATIC and "10 training steps are too few" in outcome.decision.reason
    assert built == [BF16_OFF]


def test_a_probe_is_cached_and_a_second_run_of_the_same_kind_only_builds_the_winner(monkeypatch, tmp_path):
    first, built = choose(monkeypatch, tmp_path, Trainer(precision="fp32"))
    assert first.decision.how == autotune.PROBED and first.decision.choice == FP32_OFF and len(built) == 2
    second, built = choose(monkeypatch, tmp_path, Trainer(precision="fp32"))
    assert second.decision.how == autotune.CACHED and built == [FP32_OFF]
    assert second.decision.tags()["autotune.candidates"] == first.decision.tags()["autotune.candidates"]
    other_batch, _ = choose(monkeypatch, tmp_path, Trainer(precision="fp32"), signature={"batch_size": 128})
    assert other_batch.decision.how == autotune.PROBED


# -- the cache -------------------------------------------------------------------------------------


MACHINE = {"cpu": "AMD EPYC", "cpu_flags": "a1b2", "cores": 2, "gpus": [], "backend": "tensorflow",
           "versions": {"keras": "3.15.1", "tensorflow": "2.21.0"}}
STEP = {"model": {"layer_dims": [2, 2]}, "input": [32, 32, 3], "batch_size": 64}


@pytest.mark.parametrize("change", [
    {"step": {**STEP, "batch_size": 128}},
    {"step": {**STEP, "model": {"layer_dims": [3, 3]}}},
    {"step": {**STEP, "input": [8, 8, 1]}},
    {"machine": {**MACHINE, "cpu_flags": "c3d4"}},
    {"machine": {**MACHINE, "cores": 16}},
    {"machine": {**MACHINE, "versions": {"keras": "3.15.1", "tensorflow": "2.22.0"}}},
])
def test_the_cache_key_changes_with_whatever_decides_the_answer(change):
    base = {"machine": MACHINE, "step": STEP, "candidates": ["fp32, XLA off", "fp32, XLA on"]}
    assert autotune.cache_key(**base) == autotune.cache_key(**dict(base))
    assert autotune.cache_key(**{**base, **change}) != autotune.cache_key(**base)


def test_an_entry_is_read_back_and_an_unreadable_one_is_ignored(tmp_path):
    timings = measured((FP32_OFF, 59.0, 3.0), (FP32_ON, 49.1, 20.0))
    path = autotune.write_cached(tmp_path, "k", FP32_OFF, timings, {"step": STEP})
    assert path == tmp_path / "k.json" and json.loads(path.read_text())["key"] == {"step": STEP}
    assert autotune.read_cached(tmp_path, "k") == (FP32_OFF, tuple(timings))
    path.write_text('{"choice": {"precision": "fp32"')  # cut short
    assert autotune.read_cached(tmp_path, "k") is None
    path.write_bytes(b"\xff\xfe")
    assert autotune.read_cached(tmp_path, "k") is None
    assert autotune.read_cached(tmp_path, "absent") is None


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert autotune.write_cached(blocker / "cache", "k", FP32_OFF, [], {}) is None


def write_many(folder, writer, rounds):
    for i in range(rounds):
        speed = float(writer * 1000 + i)
        autotune.write_cached(folder, "shared", FP32_OFF, measured((FP32_OFF, speed, 1.0)), {"writer": writer})


def test_two_writers_at_once_leave_one_complete_entry_and_readers_never_see_half(tmp_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=write_many, args=(tmp_path, w, 300)) for w in (1, 2)]
    for writer in writers:
        writer.start()
    reads = 0
    while any(w.is_alive() for w in writers):
        if (tmp_path / "shared.json").exists():
            assert autotune.read_cached(tmp_path, "shared") is not None
            reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    choice, (only,) = autotune.read_cached(tmp_path, "shared")
    assert only.images_per_s in (1299.0, 2299.0)  # one writer's last entry, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]  # no temporary files left
    assert reads > 0


def test_the_cache_folder_follows_the_config_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_CACHE_DIR", str(tmp_path / "env"))
    assert autotune.cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg" / "autotune"
    assert autotune.cache_dir(None) == tmp_path / "env" / "autotune"
    monkeypatch.delenv("RESNET_LAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert autotune.cache_dir(None) == tmp_path / "xdg" / "resnet-lab" / "autotune"


# -- the worker process ----------------------------------------------------------------------------


def test_a_worker_that_fails_leaves_the_static_choice_and_says_why(monkeypatch):
    import numpy as np

    from resnet_lab.autotune.worker import time_elsewhere
    from resnet_lab.training.build import Recipe

    cfg = compose_config("train", ["debug=tiny"])
    broken = Recipe.of(cfg, spec="not a model spec", image_shape=(8, 8, 3), num_classes=3, steps_per_epoch=3)
    x, y = np.zeros((8, 8, 8, 3), "float32"), np.zeros((8,), "int32")
    elsewhere = time_elsewhere(broken, x, y, seed=0, total_steps=10_000, max_seconds=60, keep_all=True,
                               start_estimate_s=0.0)
    measurements, stopped = elsewhere([FP32_ON], measured((FP32_OFF, 100.0, 1.0)), 0.0)
    assert measurements == [] and stopped.startswith("the probe's worker failed: ")

    build, _ = fabricated_probe(monkeypatch, {FP32_OFF: 100.0})
    outcome = probe.probe([FP32_OFF, FP32_ON], FP32_OFF, build, lambda m: m, None, None, 64, 0, 10_000, 60.0,
                          elsewhere=lambda settings, so_far, spent: ([], stopped))
    assert outcome.decision.how == autotune.STATIC and outcome.decision.choice == FP32_OFF
    assert outcome.decision.reason == stopped and not outcome.complete


def test_a_later_job_sharing_a_probed_set_up_reports_it_as_timed_earlier():
    probed = autotune.Decision(FP32_ON, autotune.PROBED, "fastest of 2 candidates timed in 9 s",
                               measured((FP32_ON, 120.0, 2.0), (FP32_OFF, 100.0, 1.0)))
    reused = probed.reused()
    assert reused.how == autotune.CACHED and reused.choice == FP32_ON and reused.measurements == probed.measurements
    assert "earlier job" in reused.reason
    static = autotune.Decision(FP32_OFF, autotune.STATIC, "trainer.autotune=false")
    assert static.reused() == static


# -- one real probe, end to end --------------------------------------------------------------------


@pytest.mark.slow  # end to end: two runs, an XLA worker process (the suite's costliest test)
def test_a_real_probe_tags_the_run_a_second_run_reads_the_cache_and_both_compute_the_same(
        tmp_path, tmp_store, monkeypatch):
    from resnet_lab.train import train

    # A tiny run is far too short to repay a probe: lift the budget so that this one is timed.
    monkeypatch.setattr(autotune, "MIN_STEPS", 1)
    monkeypatch.setattr(autotune, "PROBE_SHARE", 1e6)
    monkeypatch.setenv(SWITCH, "0")  # the second run builds anew, and so reads the cache on disk
    overrides = ["debug=tiny", f"tracking.uri={tmp_store}", "tracking.experiment=autotune", "trainer.verbose=0",
                 "trainer.jit_compile=null", "trainer.precision=fp32", f"trainer.autotune_cache={tmp_path}",
                 "trainer.epochs=1", "tracking.log_model=false"]  # the probe is the point, not the training
    first = train(compose_config("train", overrides))
    second = train(compose_config("train", overrides))

    _, runs = runs_in(tmp_path, "autotune")
    probed, cached = sorted(runs, key=lambda r: r.info.start_time)
    assert probed.data.tags["autotune"] == "probed" and cached.data.tags["autotune"] == "cached"
    assert "fastest of 2 candidates" in probed.data.tags["autotune.reason"]
    timed = probed.data.tags["autotune.candidates"]
    assert "fp32/xla_off" in timed and "fp32/xla_on" in timed
    assert cached.data.tags["autotune.candidates"] == timed
    assert cached.data.tags["jit_compile"] == probed.data.tags["jit_compile"]
    (entry,) = (tmp_path / "autotune").glob("*.json")
    assert str(entry) in cached.data.tags["autotune.reason"]
    # The probe's steps left no trace: the probed run computed what the cached one did.
    computed = [k for k in first if "loss" in k or "accuracy" in k]
    assert computed and {k: first[k] for k in computed} == {k: second[k] for k in computed}
    assert MlflowClient(tmp_store).get_run(probed.info.run_id).info.status == "FINISHED"
