"""Precision choice from fabricated /proc/cpuinfo text and accelerators; seeding; memory and age readings."""

from __future__ import annotations

import pytest

from helpers.configs import compose_config
from resnet_lab import runtime
from resnet_lab.runtime import (
    XLA_CPU_MIN_FLOPS_PER_LAYER,
    Accelerator,
    choose_jit_compile,
    choose_precision,
    cpu_supports_bf16,
    resolve_jit_compile,
    resolve_precision,
)

# Abridged /proc/cpuinfo entries as Linux prints them (two logical CPUs each).
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2
bugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad
"""
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
# A bf16 word that is not in the CPU's own flags line must not count.
BF16_ONLY_ELSEWHERE = "processor\t: 0\nflags\t\t: fpu sse2 avx2\nvmx flags\t: avx512_bf16\nbugs\t\t: amx_bf16\n"


@pytest.mark.parametrize("cpuinfo, expected", [
    (EPYC_AVX2, False), (SAPPHIRE_RAPIDS, True), (ZEN4, True), (BF16_ONLY_ELSEWHERE, False), ("", False),
])
def test_bf16_support_is_read_off_the_flags_line(cpuinfo, expected):
    assert cpu_supports_bf16(cpuinfo) is expected


def test_auto_picks_bf16_only_where_the_hardware_doing_the_maths_has_it():
    assert choose_precision(EPYC_AVX2, None) == "fp32"
    assert choose_precision(SAPPHIRE_RAPIDS, None) == "mixed_bf16"
    h100 = Accelerator("NVIDIA H100", bf16=True)
    t4 = Accelerator("Tesla T4", bf16=False)
    assert choose_precision(EPYC_AVX2, h100) == "mixed_bf16"  # the GPU trains, not the CPU
    assert choose_precision(SAPPHIRE_RAPIDS, t4) == "fp32"


@pytest.mark.parametrize("capability, expected", [
    ("9.0", True), ("8.0", True), ("8.6", True), ("7.5", False), ((8, 9), True), ((7, 0), False), (None, False),
])
def test_gpu_bf16_needs_compute_capability_8(capability, expected):
    assert runtime._capability_at_least(capability) is expected


def test_resolve_reads_cpuinfo_for_auto_and_passes_explicit_choices(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "find_accelerator", lambda: None)
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(runtime, "CPUINFO", cpuinfo)
    cpuinfo.write_text(EPYC_AVX2)
    assert resolve_precision("auto") == "fp32"
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    assert resolve_precision("auto") == "mixed_bf16"
    assert resolve_precision("fp32") == "fp32" and resolve_precision("mixed_fp16") == "mixed_fp16"
    cpuinfo.unlink()  # no /proc (macOS, Windows): no claim of bf16
    assert resolve_precision("auto") == "fp32"


def test_auto_is_the_default_and_a_valid_choice():
    cfg = compose_config("train", [])
    assert cfg.trainer.precision == "auto"
    from resnet_lab.validation import validate_trainer

    validate_trainer(cfg.trainer)


H100 = Accelerator("NVIDIA H100", bf16=True)
# FLOPs per layer and image of models measured in benchmarks/README.md ("XLA on a CPU").
CIFAR_RESNET20_8PX = 0.25e6  # XLA 0.77x as fast as TensorFlow's graph
RESNET18_8PX = 1.3e6  # XLA 6.3x as fast


@pytest.mark.parametrize("backend, accelerator, flops_per_layer, deterministic, expected", [
    ("tensorflow", None, CIFAR_RESNET20_8PX, False, False),
    ("tensorflow", None, RESNET18_8PX, False, True),
    ("tensorflow", None, XLA_CPU_MIN_FLOPS_PER_LAYER, False, True),
    ("tensorflow", H100, CIFAR_RESNET20_8PX, False, True),  # Keras compiles on a GPU as well
    ("tensorflow", H100, RESNET18_8PX, True, False),  # XLA lacks deterministic versions of some ops
    ("jax", None, CIFAR_RESNET20_8PX, True, True),  # JAX without XLA runs op by op
    ("torch", H100, RESNET18_8PX, False, False),  # eager, as Keras' default; torch.compile is opt-in
])
def test_xla_is_chosen_where_it_trains_faster(backend, accelerator, flops_per_layer, deterministic, expected):
    assert choose_jit_compile(backend, accelerator, flops_per_layer, deterministic) is expected


def test_an_explicit_jit_compile_is_kept(monkeypatch):
    monkeypatch.setattr(runtime, "find_accelerator", lambda: None)
    monkeypatch.setattr(runtime, "keras_backend", lambda: "tensorflow")
    assert resolve_jit_compile(True, flops_per_image=1e3, depth=10) is True
    assert resolve_jit_compile(False, flops_per_image=1e12, depth=10) is False
    assert resolve_jit_compile(None, flops_per_image=20 * RESNET18_8PX, depth=20) is True
    assert resolve_jit_compile(None, flops_per_image=20 * CIFAR_RESNET20_8PX, depth=20) is False


def test_memory_and_process_age_readings_are_plausible():
    assert runtime.host_peak_memory_bytes() > 10 * 1024 * 1024  # this interpreter alone holds more
    age = runtime.process_age_seconds()
    assert age is None or 0 < age < 24 * 3600
    assert runtime.device_peak_memory_bytes() is None or runtime.device_peak_memory_bytes() > 0
