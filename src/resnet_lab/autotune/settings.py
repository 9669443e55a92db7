"""Which precision and XLA setting a run trains with: what the config says, what a probe on this machine
measured, what an earlier probe cached, or a static choice.

``trainer.precision=auto`` and ``trainer.jit_compile=null`` leave the choice to the machine. No rule read
off one CPU holds for the next (on a 2-core AVX2 EPYC XLA trained ResNet-18 1.4x faster; on an AVX-512
EPYC 0.6x as fast), so, as cuDNN's benchmark mode does for convolution algorithms, the candidates are
timed on the real model, batch and input, and the fastest wins. This module holds the decisions and
the cache; ``probe`` does the timing. Nothing here imports Keras.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from resnet_lab.runtime.machine import Hardware

# How a run's setting was decided: the run's ``autotune`` tag.
CONFIGURED = "configured"  # trainer.precision and trainer.jit_compile both set: nothing to choose
PROBED = "probed"  # timed on this machine in this run
CACHED = "cached"  # timed by an earlier run of the same kind on this machine
STATIC = "static"  # not timed: the safe choice (see static_choice)
RESUMED = "resumed"  # a resumed run keeps what its first process chose

# A probe may cost at most this share of the run's estimated training time: one that finds nothing
# costs the run at most 10%, and one that finds a 1.2x faster setting more than pays for itself.
PROBE_SHARE = 0.1
# Below this many training steps a probe is never worth it: its own steps would be a large share.
MIN_STEPS = 60
# Untimed steps per candidate (the first traces and compiles), then timed ones (the median counts).
WARMUP_STEPS = 2
TIMED_STEPS = 6
# Until a candidate with XLA has been timed, its set-up is assumed to cost this many times the
# graph's: XLA compiles every kernel for the shapes at hand.
XLA_SETUP_FACTOR = 3.0
# A faster candidate must beat the static choice by this much to replace it: step times of one
# machine vary by a few percent between measurements, and the static choice is the familiar one.
MARGIN = 0.03
CACHE_VERSION = 1


@dataclass(frozen=True)
class Setting:
    precision: str
    jit_compile: bool

    def label(self) -> str:
        return f"{self.precision}, XLA {'on' if self.jit_compile else 'off'}"


@dataclass(frozen=True)
class Measurement:
    """One candidate timed on the real model: steady training speed and what it cost to get there."""

    setting: Setting
    images_per_s: float
    setup_s: float  # build, compile and the first step: what a run with this setting pays once

    def as_dict(self) -> Dict[str, Any]:
        # Unrounded: a cached figure reads back as it was measured (and as the probed run tagged it).
        return {"precision": self.setting.precision, "jit_compile": self.setting.jit_compile,
                "images_per_s": self.images_per_s, "setup_s": self.setup_s}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Measurement":
        return cls(Setting(str(d["precision"]), bool(d["jit_compile"])), float(d["images_per_s"]),
                   float(d["setup_s"]))


@dataclass(frozen=True)
class Decision:
    """The setting a run trains with, how it was decided and why, and the figures behind it."""

    choice: Setting
    how: str
    reason: str
    measurements: Tuple[Measurement, ...] = ()

    def tags(self) -> Dict[str, str]:
        tags = {"precision": self.choice.precision, "jit_compile": str(self.choice.jit_compile),
                "autotune": self.how, "autotune.reason": self.reason}
        if self.measurements:
            tags["autotune.candidates"] = table_line(self.measurements)
        return tags

    def reused(self) -> "Decision":
        """The decision as a later job of the same configuration in this process reports it: a probe's figures
        are then an earlier job's, as a cached decision's are."""
        if self.how != PROBED:
            return self
        return dataclasses.replace(self, how=CACHED, reason="timed by an earlier job of this config in this process")

    def log_line(self) -> str:
        return f"precision {self.choice.label()} ({self.how}: {self.reason})"


def table_line(measurements: Sequence[Measurement]) -> str:
    """``mixed_bf16/xla_off 84.1, fp32/xla_off 59.0, ...``: each candidate's images/s, fastest first."""
    ranked = sorted(measurements, key=lambda m: -m.images_per_s)
    return ", ".join(f"{m.setting.precision}/xla_{'on' if m.setting.jit_compile else 'off'} "
                     f"{m.images_per_s:.1f}" for m in ranked)


def static_choice(hardware: Hardware, precision: str, jit_compile: Optional[bool], deterministic: bool,
                  distributed: bool = False) -> Setting:
    """The setting without a probe: never worse than Keras' own defaults on the backend.

    XLA as Keras decides it: on JAX always, on TensorFlow on a GPU only (not with deterministic ops or
    tf.distribute), on PyTorch never. Precision: mixed bf16 where the hardware computes bf16 natively
    (measured faster than fp32 on every such machine so far), else fp32; never bf16 where it would be
    emulated.
    """
    if precision == "auto":
        precision = "mixed_bf16" if hardware.bf16 else "fp32"
    if jit_compile is None:
        if hardware.backend == "jax":
            jit_compile = True
        elif hardware.backend == "tensorflow":
            jit_compile = hardware.accelerator is not None and not deterministic and not distributed
        else:
            jit_compile = False
    return Setting(precision, jit_compile)


def candidates(hardware: Hardware, precision: str, jit_compile: Optional[bool], deterministic: bool,
               distributed: bool = False) -> List[Setting]:
    """Every setting ``auto``/``null`` allow on this hardware, the static choice first.

    Precision: fp32, and mixed bf16 where it is native, or mixed fp16 on a GPU without bf16. XLA: on
    and off on TensorFlow (off only with deterministic ops, which XLA lacks, or tf.distribute); always
    on for JAX (Keras runs JAX op by op without it); off on PyTorch (eager, as Keras does it).
    """
    static = static_choice(hardware, precision, jit_compile, deterministic, distributed)
    if precision != "auto":
        precisions = [precision]
    elif hardware.bf16:
        precisions = ["mixed_bf16", "fp32"]
    elif hardware.accelerator is not None:
        precisions = ["fp32", "mixed_fp16"]
    else:
        precisions = ["fp32"]
    if jit_compile is not None:
        jits = [jit_compile]
    elif hardware.backend == "tensorflow" and not deterministic and not distributed:
        jits = [static.jit_compile, not static.jit_compile]
    else:
        jits = [static.jit_compile]
    # Static first; then its XLA twin (the bigger difference, usually), then the other precisions.
    ordered = [Setting(p, j) for p in precisions for j in jits]
    ordered.sort(key=lambda c: (c.precision != static.precision, c.jit_compile != static.jit_compile))
    return ordered


def too_short(total_steps: int) -> Optional[str]:
    """Why a run of ``total_steps`` training steps is not probed at all, or None."""
    if total_steps < MIN_STEPS:
        return f"{total_steps} training steps are too few to repay a probe (it needs {MIN_STEPS})"
    return None


def estimated_setup_s(candidate: Setting, measured: Sequence[Measurement]) -> float:
    """What timing ``candidate`` will cost, from the candidates timed so far."""
    alike = [m.setup_s for m in measured if m.setting.jit_compile == candidate.jit_compile]
    if alike:
        return max(alike)
    other = max(m.setup_s for m in measured)
    return other * XLA_SETUP_FACTOR if candidate.jit_compile else other


def next_within_budget(candidate: Setting, measured: Sequence[Measurement], spent_s: float,
                       total_steps: int, batch_size: int, max_seconds: float,
                       share: Optional[float] = None) -> Optional[str]:
    """None when timing ``candidate`` fits the probe's budget, else why the probe stops here.

    The budget is the smaller of ``max_seconds`` and a tenth of the run's training time, estimated
    from the fastest candidate so far (``share`` of it: ``PROBE_SHARE`` unless given); ``spent_s`` is
    what the probe has cost beyond the set-up the run pays anyway.
    """
    fastest = max(m.images_per_s for m in measured)
    training_s = total_steps * batch_size / fastest
    budget = min(max_seconds, (PROBE_SHARE if share is None else share) * training_s)
    steps_s = (WARMUP_STEPS + TIMED_STEPS) * batch_size / fastest
    cost = estimated_setup_s(candidate, measured) + steps_s
    if spent_s + cost <= budget:
        return None
    limit = (f"trainer.autotune_max_seconds={max_seconds:g}" if budget == max_seconds
             else f"a tenth of the run's estimated {training_s:.0f} s of training")
    return f"timing {candidate.label()} would cost about {cost:.0f} s more, over {limit}"


def fastest(measurements: Sequence[Measurement], static: Setting) -> Setting:
    """The fastest candidate; the static choice unless another beats it by more than ``MARGIN``."""
    best = max(measurements, key=lambda m: m.images_per_s)
    baseline = next((m for m in measurements if m.setting == static), None)
    if baseline is not None and best.images_per_s <= baseline.images_per_s * (1 + MARGIN):
        return static
    return best.setting


# -- the cache -------------------------------------------------------------------------------------


def cache_dir(configured: Optional[str] = None) -> Path:
    """``trainer.autotune_cache``, else ``$RESNET_LAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/resnet-lab``
    (``~/.cache/resnet-lab``), each with an ``autotune`` folder inside."""
    if configured:
        root = Path(configured).expanduser()
    elif os.environ.get("RESNET_LAB_CACHE_DIR"):
        root = Path(os.environ["RESNET_LAB_CACHE_DIR"]).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnet-lab"
    return root / "autotune"


def cache_key(**parts: Any) -> str:
    """A digest of what decides the answer: the machine, the backend and its version, the model and
    its training step, the input shape and the batch size, and the settings left to choose."""
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def read_cached(folder: Path, key: str) -> Optional[Tuple[Setting, Tuple[Measurement, ...]]]:
    """The cached winner and figures for ``key``; None when absent, unreadable or malformed."""
    try:
        entry = json.loads((folder / f"{key}.json").read_text())
        choice = Setting(str(entry["choice"]["precision"]), bool(entry["choice"]["jit_compile"]))
        return choice, tuple(Measurement.from_dict(m) for m in entry["measurements"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(folder: Path, key: str, choice: Setting, measurements: Sequence[Measurement],
                 described: Dict[str, Any]) -> Optional[Path]:
    """Store a probe's outcome: written whole to a temporary file, then renamed over the entry, so
    parallel jobs writing the same key leave one complete entry and a reader never sees half of one.
    A cache that cannot be written is not an error: the next run probes again."""
    entry = {"choice": dataclasses.asdict(choice), "measurements": [m.as_dict() for m in measurements],
             "key": described}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix=f".{key}.", suffix=".tmp", delete=False) as f:
            json.dump(entry, f, indent=1, default=str)
        os.replace(f.name, folder / f"{key}.json")
        return folder / f"{key}.json"
    except OSError:
        return None
