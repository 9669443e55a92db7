"""What the machine offers: its CPU and GPUs, bf16 maths, memory, and this process's age.

Nothing here imports TensorFlow unless TensorFlow is the Keras backend: on JAX or PyTorch a run
must never pay for (or grab a GPU through) a TensorFlow import it does not use.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

# CPU flags (as /proc/cpuinfo spells them) whose presence means bf16 matrix maths runs natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# NVIDIA GPUs compute in bf16 from Ampere (compute capability 8.0) on.
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Hardware:
    """What decides which precision and XLA settings exist: the backend, and bf16 on the device doing the maths."""

    backend: str
    accelerator: Optional[str]  # the first GPU's name; None on a CPU-only machine
    bf16: bool  # bf16 computed natively (CPU flags, or the GPU's generation)


@dataclass(frozen=True)
class Accelerator:
    """The first accelerator the Keras backend sees; ``bf16`` says whether it computes in bfloat16."""

    name: str
    bf16: bool


def keras_backend() -> str:
    """The backend Keras will use, read without importing Keras (the same rule Keras applies)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def cpu_supports_bf16(cpuinfo: str) -> bool:
    """True when any ``flags`` line of /proc/cpuinfo text lists a native bf16 instruction set."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and set(value.split()) & set(BF16_CPU_FLAGS):
            return True
    return False


def cpuinfo_text() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:  # not Linux: no flags to read, so no claim of bf16 support
        return ""


def hardware() -> Hardware:
    """The backend and the device that will do the maths, as autotuning needs them."""
    accelerator = find_accelerator()
    if accelerator is not None:  # the GPU trains, not the CPU
        return Hardware(keras_backend(), accelerator.name, accelerator.bf16)
    return Hardware(keras_backend(), None, cpu_supports_bf16(cpuinfo_text()))


def machine_fingerprint() -> Dict[str, Any]:
    """What makes one machine train at another speed than the next: the CPU model, its flags and the
    cores this process may use, the GPUs, and the backend's version."""
    cpu_model, flags = "", ""
    for line in cpuinfo_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not cpu_model:
            cpu_model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = " ".join(sorted(value.split()))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count()
    return {"cpu": cpu_model or platform.processor() or platform.machine(),
            "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:12], "cores": cores,
            "gpus": accelerator_names(), "backend": keras_backend(), "versions": backend_versions()}


def backend_versions() -> Dict[str, str]:
    import keras

    backend = keras_backend()
    module = sys.modules.get(backend)  # tensorflow, jax or torch, already imported by Keras
    return {"keras": keras.__version__, backend: getattr(module, "__version__", "unknown")}


def accelerator_names() -> List[str]:
    """Every GPU the backend sees, by name (empty on a CPU-only machine)."""
    backend = keras_backend()
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if backend == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                for g in tf.config.list_physical_devices("GPU")]
    return []


def find_accelerator() -> Optional[Accelerator]:
    """The first GPU of the current backend, or None on a CPU-only machine."""
    backend = keras_backend()
    if backend == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                capability = getattr(device, "compute_capability", None)
                return Accelerator(device.device_kind, _capability_at_least(capability))
        return None
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return Accelerator(torch.cuda.get_device_name(0), bool(torch.cuda.is_bf16_supported()))
        return None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability")
            return Accelerator(details.get("device_name", gpus[0].name), _capability_at_least(capability))
    return None


def _capability_at_least(capability) -> bool:
    """Compute capability as a tuple (TensorFlow) or a "9.0" string (JAX), against the bf16 minimum."""
    if capability is None:
        return False
    if isinstance(capability, str):
        capability = tuple(int(part) for part in capability.split(".")[:2])
    return tuple(capability) >= BF16_MIN_COMPUTE_CAPABILITY


def device_peak_memory_bytes() -> Optional[int]:
    """Peak bytes the backend has held on its first GPU; None on a CPU or where it is not reported."""
    backend = keras_backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform == "gpu" else None
        return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
    if backend == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    return None


def host_peak_memory_bytes() -> Optional[int]:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def process_age_seconds() -> Optional[float]:
    """Seconds since this process started (the command's start), from /proc; None elsewhere."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    # Field 22 (starttime, clock ticks after boot) counts from after the parenthesised command name.
    fields = stat[stat.rindex(")") + 2:].split()
    start_ticks = int(fields[19])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
