"""What the machine offers, from fabricated /proc/cpuinfo text and accelerators; memory and age readings."""

from __future__ import annotations

import pytest
from helpers.configs import compose_config

from resnet_lab.runtime import machine
from resnet_lab.runtime.machine import Accelerator, cpu_supports_bf16

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


@pytest.mark.parametrize("capability, expected", [
    ("9.0", True), ("8.0", True), ("8.6", True), ("7.5", False), ((8, 9), True), ((7, 0), False), (None, False),
])
def test_gpu_bf16_needs_compute_capability_8(capability, expected):
    assert machine._capability_at_least(capability) is expected


def test_the_hardware_reads_cpuinfo_and_the_gpu_does_the_maths_where_there_is_one(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "keras_backend", lambda: "tensorflow")
    monkeypatch.setattr(machine, "find_accelerator", lambda: None)
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(machine, "CPUINFO", cpuinfo)
    cpuinfo.write_text(EPYC_AVX2)
    assert machine.hardware().bf16 is False and machine.hardware().accelerator is None
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    assert machine.hardware().bf16 is True
    cpuinfo.unlink()  # no /proc (macOS, Windows): no claim of bf16
    assert machine.hardware().bf16 is False
    cpuinfo.write_text(EPYC_AVX2)
    monkeypatch.setattr(machine, "find_accelerator", lambda: Accelerator("NVIDIA H100", bf16=True))
    assert machine.hardware().bf16 is True and machine.hardware().accelerator == "NVIDIA H100"
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    monkeypatch.setattr(machine, "find_accelerator", lambda: Accelerator("Tesla T4", bf16=False))
    assert machine.hardware().bf16 is False  # the GPU trains, not the CPU


def test_the_machine_fingerprint_tells_cpus_and_core_counts_apart(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(machine, "CPUINFO", cpuinfo)
    cpuinfo.write_text(EPYC_AVX2)
    epyc = machine.machine_fingerprint()
    assert epyc["cpu"] == "AMD EPYC" and epyc["backend"] == machine.keras_backend()
    assert machine.machine_fingerprint() == epyc  # stable
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    assert machine.machine_fingerprint()["cpu_flags"] != epyc["cpu_flags"]
    cpuinfo.write_text(EPYC_AVX2)
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert machine.machine_fingerprint()["cores"] == 1  # the cores this process may use, not the machine's


def test_auto_is_the_default_and_a_valid_choice():
    cfg = compose_config("train", [])
    assert cfg.trainer.precision == "auto" and cfg.trainer.jit_compile is None and cfg.trainer.autotune is True
    from resnet_lab.config.validation import validate_trainer

    validate_trainer(cfg.trainer)


def test_memory_and_process_age_readings_are_plausible():
    assert machine.host_peak_memory_bytes() > 10 * 1024 * 1024  # this interpreter alone holds more
    age = machine.process_age_seconds()
    assert age is None or 0 < age < 24 * 3600
    assert machine.device_peak_memory_bytes() is None or machine.device_peak_memory_bytes() > 0


@pytest.mark.parametrize("value, wanted", [("1", True), ("true", True), ("0", False), ("", False), (None, False)])
def test_resnet_lab_debug_brings_back_every_log_line(monkeypatch, value, wanted):
    import logging
    import os

    from resnet_lab import cli
    from resnet_lab.runtime import startup_noise

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv(startup_noise.QUIET_BY_DEFAULT, raising=False)
    if value is None:
        monkeypatch.delenv(startup_noise.DEBUG, raising=False)
    else:
        monkeypatch.setenv(startup_noise.DEBUG, value)
    project, absl = logging.getLogger("resnet_lab"), logging.getLogger("absl")
    levels = project.level, absl.level
    try:
        project.setLevel(logging.INFO)  # as Hydra's job logging leaves it
        assert startup_noise.debugging() is wanted
        cli._quiet_backends()  # what every command does first
        assert ("TF_CPP_MIN_LOG_LEVEL" not in os.environ) is wanted  # TensorFlow's own level, or a quiet one
        startup_noise.show_debug_lines()  # what every job does once Hydra has set up its logging
        assert (project.getEffectiveLevel() == logging.DEBUG) is wanted
    finally:
        project.setLevel(levels[0])
        absl.setLevel(levels[1])


@pytest.mark.slow
def test_with_resnet_lab_debug_tensorflows_own_lines_come_back(tmp_path):
    from helpers.processes import AS_A_USER, noise_in, run_cli

    quiet = run_cli("resnet-lab-describe", ["describe.format=json"], tmp_path, env=AS_A_USER)
    loud = run_cli("resnet-lab-describe", ["describe.format=json"], tmp_path, env={**AS_A_USER, "RESNET_LAB_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == 0, loud.stderr[-3000:]
    assert not noise_in(quiet.stderr) and noise_in(loud.stderr), loud.stderr[-3000:]


def test_variable_values_read_in_one_call_equal_each_variable_read_alone():
    """Checkpoints read every variable through ``variable_values``: weights, integer step counts and seed
    states, in a model's order, as they are now (read after training changed them)."""
    import keras
    import numpy as np

    from resnet_lab.runtime.backend import variable_values

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    variables = [*model.variables, *model.optimizer.variables]
    assert {str(v.dtype) for v in variables} >= {"float32", "int64"}
    variable_values(variables)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    read = variable_values(variables)
    alone = [keras.ops.convert_to_numpy(v) for v in variables]
    assert [a.dtype for a in read] == [a.dtype for a in alone]
    step = next(i for i, v in enumerate(variables) if v is model.optimizer.iterations)
    assert all(np.array_equal(a, b) for a, b in zip(read, alone)) and int(read[step]) == 1
    assert variable_values([]) == []


def test_a_command_owns_its_heap_and_freezes_it_when_the_interpreter_exits_after_the_other_exit_handlers():
    """Python's last collections after a sweep took about 4 s; the commands freeze the heap at exit instead, and
    keep what they build to stay out of the collector's way until then (``runtime/heap.py``). Only the commands:
    a caller of ``train`` in a longer process keeps its collections. A second call registers nothing more."""
    import subprocess
    import sys

    script = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from resnet_lab import cli\n"
        "from resnet_lab.runtime import heap\n"
        "print('managed before:', heap.managed())\n"
        "cli._own_the_heap(); cli._own_the_heap()\n"
        "print('managed:', heap.managed(), 'frozen before exit:', gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["managed before: False", "managed: True frozen before exit: False",
                                "frozen at exit: True"]


def test_a_commands_first_mlflow_client_is_frozen_as_built_and_later_ones_freeze_nothing():
    """MLflow's import and its store stay for the process: the first client freezes them (``runtime/heap.py``). A
    later client must not freeze again, or it would keep whatever garbage is waiting for a collection. (A server's
    URI: its client connects only when called, so no store is made here.)"""
    import subprocess
    import sys

    script = (
        "import gc\n"
        "from resnet_lab.runtime import heap\n"
        "from resnet_lab.tracking.store import client_for\n"
        "heap.manage()\n"
        "client_for('http://127.0.0.1:9'); first = gc.get_freeze_count()\n"
        "client_for('http://127.0.0.1:9')\n"
        "print(first > 100_000, gc.get_freeze_count() == first)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
