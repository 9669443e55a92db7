"""bench(cfg) -> results: how fast a composed model trains and predicts, warm-up excluded.

The model is built, compiled, fed and fitted the way ``train`` does it (builder, the precision and
XLA setting chosen by timing the candidates, ``optim.compile_model``, ``data.feeding``, the NaN guard
and the MLflow epoch logger), from in-memory images. In the same process it can measure baselines on the same data: the seed's
subclassed network (``seed``), ``model.fit`` on the built model with none of the framework around
it (``raw_fit``), and the framework's model with XLA switched the other way (``other_xla``).
Timed measurements of all models take turns, so a neighbour's load on a shared machine falls on
all of them alike.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import numpy as np
from omegaconf import DictConfig, OmegaConf

from resnet_lab import tracking
from resnet_lab.autotune.settings import Measurement, Setting
from resnet_lab.config.validation import validate_bench_config
from resnet_lab.errors import ConfigError

if TYPE_CHECKING:
    from resnet_lab.autotune.probe import Outcome
    from resnet_lab.autotune.timing import StepClock

log = logging.getLogger(__name__)

FRAMEWORK = "framework"
MB = 1024 * 1024


@dataclass
class Subject:
    """One model under measurement and the timings gathered for it."""

    name: str
    model: Any
    callbacks: Callable[[], List[Any]]  # made fresh for each fit: the framework's include MLflow's
    first_step_s: float = float("nan")
    start_to_first_step_s: Optional[float] = None
    images_per_s: List[float] = field(default_factory=list)
    step_s: List[float] = field(default_factory=list)
    step_ms_medians: List[float] = field(default_factory=list)  # one per timed fit
    tail_s: List[float] = field(default_factory=list)  # per timed fit: last step's end to fit's return


def bench(cfg: DictConfig) -> Dict[str, Any]:
    """Measure the composed model (and the baselines in ``bench.baselines``); log to MLflow if enabled.

    Where ``trainer.precision=auto`` or ``trainer.jit_compile=null`` leave a choice, every setting they
    allow is timed (the candidate table), the cache that training runs read is updated, and the
    fastest is measured as the framework's model.
    """
    validate_bench_config(cfg)  # before any run exists
    import keras

    from resnet_lab.autotune.probe import choose, step_signature
    from resnet_lab.model.analysis import analyze
    from resnet_lab.runtime.backend import seed_everything
    from resnet_lab.training.build import Recipe

    seed_everything(cfg.seed)
    x, y, splits = _images(cfg)
    num_classes = splits.num_classes
    spec = OmegaConf.to_object(cfg.model)
    # In-memory images, no augmentation: the network alone (its input normalization included), built and
    # compiled as a run builds it.
    recipe = Recipe.of(cfg, spec, x.shape[1:], num_classes, cfg.bench.steps, augment=False, splits=splits)

    def build(setting: Setting) -> Any:
        return recipe.build(setting.precision, setting.jit_compile).model

    outcome = choose(cfg.trainer, step_signature(cfg, x.shape[1:], num_classes), build, lambda model: model,
                     x, y, cfg.seed, total_steps=cfg.bench.steps, measure_all=True, recipe=recipe)
    setting, network = outcome.decision.choice, outcome.built
    report = analyze(network, spec=spec)
    models = {FRAMEWORK: network}
    for name in cfg.bench.baselines:  # built before the run starts, so a mismatch leaves no run behind
        models[name] = _baseline(name, cfg, build, setting, network, outcome.builds)

    facts = {
        "model": cfg.model.name, "depth": report.depth, "params_total": report.params_total,
        "gflops_per_image": report.flops / 1e9, "data": cfg.data.name, "image_shape": list(x.shape[1:]),
        "batch_size": cfg.trainer.batch_size, "precision": setting.precision, "jit_compile": setting.jit_compile,
        "autotune": outcome.decision.how, "autotune_reason": outcome.decision.reason,
        "candidates": [m.as_dict() for m in outcome.decision.measurements],
        "backend": keras.backend.backend(), "keras": keras.__version__, "device": _device_name(),
        "steps": cfg.bench.steps, "repeats": cfg.bench.repeats,
    }
    if not cfg.tracking.enabled:
        return {**facts, **_measure(cfg, models, x, y, None, setting.jit_compile, outcome)}

    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.tracking.uri)
    tags = {tracking.TAG_ROLE: "bench", "preset": cfg.model.name, "data": cfg.data.name}
    with tracking.start_run(uri, cfg.tracking.experiment, cfg.tracking.run_name or f"bench-{cfg.model.name}",
                            tags=tags) as run:
        run.log_params(tracking.flatten(OmegaConf.to_container(cfg, resolve=True)))
        run.set_tags({**outcome.decision.tags(), "keras_backend": facts["backend"], "keras": facts["keras"],
                      "device": facts["device"], "depth": facts["depth"], "params_total": facts["params_total"]})
        results = _measure(cfg, models, x, y, run, setting.jit_compile, outcome)
        run.log_metrics({k: v for k, v in results.items() if isinstance(v, (int, float)) and v == v}, step=0)
        run.log_metrics({_metric_name(m): m.images_per_s for m in outcome.decision.measurements}, step=0)
        results["mlflow_run_id"] = run.run_id
    return {**facts, **results}


def _metric_name(measurement: Measurement) -> str:
    """``autotune.mixed_bf16.xla_off_images_per_s``: one metric per timed setting."""
    xla = "xla_on" if measurement.setting.jit_compile else "xla_off"
    return f"autotune.{measurement.setting.precision}.{xla}_images_per_s"


def _images(cfg: DictConfig):
    """Enough training images for the longest fit, cycling the data set's training split (and the splits)."""
    from resnet_lab.data import load_splits

    splits = load_splits(cfg.data)
    needed = cfg.trainer.batch_size * max(cfg.bench.steps, cfg.bench.warmup_steps)
    index = np.arange(needed) % len(splits.y_train)
    # float32 raw values: the seed's subclassed network (a baseline) has no float32 input to cast uint8 pixels.
    return splits.x_train[index].astype(np.float32), splits.y_train[index], splits


def _baseline(name: str, cfg: DictConfig, build: Callable[[Setting], Any], setting: Setting, framework_model: Any,
              built: Dict[Setting, Any]) -> Any:
    if name in ("raw_fit", "other_xla"):
        # raw_fit: the same network and compile, only the framework around fit is missing;
        # other_xla: the same network and training, compiled with the other XLA choice (the probe's
        # build of it when it timed that setting).
        jit_compile = setting.jit_compile if name == "raw_fit" else not setting.jit_compile
        twin = Setting(setting.precision, jit_compile)
        if name == "other_xla" and twin in built:
            return built[twin]
        return build(twin)
    from resnet_lab.model.blog_post import blog_post_resnet
    from resnet_lab.training.optim import compile_model

    # As the seed writes it: float32, and compiled with Keras' own XLA rule whatever trainer.* says.
    image_shape, num_classes = framework_model.input_shape[1:], framework_model.output_shape[-1]
    seed = blog_post_resnet(list(cfg.model.layer_dims), image_shape, num_classes)
    if seed.count_params() != framework_model.count_params():
        raise ConfigError("bench.baselines", list(cfg.bench.baselines),
                          f"'seed' only with the seed's network (model=seed_resnet18 or seed_resnet34, unchanged); "
                          f"model={cfg.model.name} has {framework_model.count_params():,} parameters, "
                          f"the seed network {seed.count_params():,}")
    return compile_model(seed, cfg, num_classes, cfg.bench.steps, "fp32", "auto")


def _measure(cfg: DictConfig, models: Dict[str, Any], x: np.ndarray, y: np.ndarray,
             run: Optional[tracking.Run], jit_compile: bool, probed: Outcome) -> Dict[str, Any]:
    from resnet_lab.runtime.machine import device_peak_memory_bytes, host_peak_memory_bytes
    from resnet_lab.training.callbacks import EpochLogger, NonFiniteLossGuard

    # The framework's model gets the callbacks of a training run (less checkpoints, which write files).
    subjects = [Subject(FRAMEWORK, models[FRAMEWORK], lambda: [NonFiniteLossGuard(), EpochLogger(run)])]
    subjects += [Subject(name, model, list) for name, model in models.items() if name != FRAMEWORK]
    batch, steps, warmup = cfg.trainer.batch_size, cfg.bench.steps, cfg.bench.warmup_steps
    framework = subjects[0]

    # The framework's model first, alone, so that its memory peaks are its own.
    _warm_up(framework, x[:warmup * batch], y[:warmup * batch], batch, cfg.seed)
    _timed_fit(framework, x[:steps * batch], y[:steps * batch], batch, cfg.seed)
    eval_images_per_s = _timed_predict(framework.model, x[:steps * batch], batch)
    host_peak, device_peak = host_peak_memory_bytes(), device_peak_memory_bytes()

    for subject in subjects[1:]:
        _warm_up(subject, x[:warmup * batch], y[:warmup * batch], batch, cfg.seed)
    for repeat in range(cfg.bench.repeats):
        for subject in subjects if repeat else subjects[1:]:
            _timed_fit(subject, x[:steps * batch], y[:steps * batch], batch, cfg.seed)

    results: Dict[str, Any] = {
        "train_images_per_s": statistics.median(framework.images_per_s),
        "eval_images_per_s": eval_images_per_s,
        "step_ms_median": 1000 * statistics.median(framework.step_s),
        # The probe compiled the framework's model: its set-up (build, compile, first step) is the probe's.
        "first_step_s": _probed_setup_s(probed) or framework.first_step_s,
        "start_to_first_step_s": probed.start_to_first_step_s or framework.start_to_first_step_s,
        "host_peak_mb": host_peak / MB if host_peak is not None else None,
        "device_peak_mb": device_peak / MB if device_peak is not None else None,
    }
    # Each timed fit apart, so that an outlier shows where its time went: in the steps, or after them
    # (epoch-end callbacks, the input pipeline's teardown).
    for subject in subjects:
        prefix = "" if subject is framework else f"{subject.name}_"
        results[f"{prefix}train_images_per_s_each"] = subject.images_per_s
        results[f"{prefix}step_ms_median_each"] = subject.step_ms_medians
        results[f"{prefix}tail_s_each"] = subject.tail_s
    for subject in subjects[1:]:
        speed = statistics.median(subject.images_per_s)
        results[f"{subject.name}_train_images_per_s"] = speed
        results[f"{subject.name}_step_ms_median"] = 1000 * statistics.median(subject.step_s)
        results[f"{subject.name}_first_step_s"] = subject.first_step_s
        # Per step: the steps alone, without what happens around them (the input pipeline's teardown).
        step_ratio = results[f"{subject.name}_step_ms_median"] / results["step_ms_median"]
        if subject.name == "seed":
            results["speedup_vs_seed"] = results["train_images_per_s"] / speed
            results["step_speedup_vs_seed"] = step_ratio
            # Each repeat's ratio (the two fits of one turn): the spread says how far one can trust it.
            results["speedup_vs_seed_each"] = [f / s for f, s in zip(framework.images_per_s, subject.images_per_s)]
        elif subject.name == "raw_fit":  # positive: the framework is slower than a bare model.fit by this fraction
            results["overhead_vs_raw_fit"] = 1.0 - results["train_images_per_s"] / speed
            results["step_overhead_vs_raw_fit"] = 1.0 - step_ratio
        else:  # XLA's images/s over the graph's, whichever of them the framework's model uses
            ratio = results["train_images_per_s"] / speed
            results["xla_speedup"] = ratio if jit_compile else 1.0 / ratio
    return results


def _probed_setup_s(probed: Outcome) -> Optional[float]:
    return next((m.setup_s for m in probed.decision.measurements if m.setting == probed.decision.choice), None)


def _fit(subject: Subject, x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> StepClock:
    """One epoch over ``x``. The framework's model (and its XLA twin) is fed as training feeds it; the
    seed and raw_fit baselines get the arrays, the usual way."""
    from resnet_lab.autotune.timing import timed_fit

    return timed_fit(subject.model, x, y, batch, seed, subject.callbacks(),
                     as_training=subject.name in (FRAMEWORK, "other_xla"))


def _warm_up(subject: Subject, x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> None:
    """Untimed steps that trace and compile; the first one's duration is the compile cost."""
    clock = _fit(subject, x, y, batch, seed)
    subject.first_step_s = clock.step_seconds()[0]
    subject.start_to_first_step_s = clock.process_age_at_first_step


def _timed_fit(subject: Subject, x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> None:
    clock = _fit(subject, x, y, batch, seed)
    subject.images_per_s.append(len(x) / clock.window_seconds())
    subject.step_s.extend(clock.step_seconds())
    subject.step_ms_medians.append(1000 * statistics.median(clock.step_seconds()))
    subject.tail_s.append(clock.window_seconds() - sum(clock.step_seconds()))


def _timed_predict(model: Any, x: np.ndarray, batch: int) -> float:
    from resnet_lab.data.feeding import feed

    model.predict(**feed(x[:batch], None, batch), verbose=0)  # compiles the inference function
    started = time.perf_counter()
    model.predict(**feed(x, None, batch), verbose=0)  # returns NumPy: every batch has finished
    return len(x) / (time.perf_counter() - started)


def _device_name() -> str:
    from resnet_lab.runtime.machine import find_accelerator

    accelerator = find_accelerator()
    return accelerator.name if accelerator is not None else "cpu"


def render(results: Dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(results, separators=(",", ":"))
    shape = "x".join(str(d) for d in results["image_shape"])
    lines = [
        f"{results['model']} on {results['data']} {shape}, batch {results['batch_size']}, {results['precision']}, "
        f"XLA {'on' if results['jit_compile'] else 'off'}, "
        f"Keras {results['keras']} on {results['backend']}, {results['device']}",
        f"  training   {results['train_images_per_s']:10.1f} images/s   step {results['step_ms_median']:.1f} ms "
        f"(median)   first step {results['first_step_s']:.2f} s",
        f"  inference  {results['eval_images_per_s']:10.1f} images/s",
        f"  start to first step {_seconds(results['start_to_first_step_s'])}   "
        f"host peak {_megabytes(results['host_peak_mb'])}   device peak {_megabytes(results['device_peak_mb'])}",
    ]
    if results.get("candidates"):
        lines.append(f"  precision and XLA ({results['autotune']}: {results['autotune_reason']})")
        chosen = (results["precision"], results["jit_compile"])
        for row in sorted(results["candidates"], key=lambda r: -r["images_per_s"]):
            mark = "   <- default" if (row["precision"], row["jit_compile"]) == chosen else ""
            lines.append(f"    {row['precision']:<10} XLA {'on ' if row['jit_compile'] else 'off'} "
                         f"{row['images_per_s']:10.1f} images/s   set-up {row['setup_s']:5.1f} s{mark}")
    if "seed_train_images_per_s" in results:
        each = results.get("speedup_vs_seed_each") or []
        spread = f", {min(each):.2f}-{max(each):.2f}x over {len(each)} repeats" if len(each) > 1 else ""
        lines.append(f"  seed subclassed {results['seed_train_images_per_s']:7.1f} images/s   "
                     f"framework is {results['speedup_vs_seed']:.2f}x as fast "
                     f"({results['step_speedup_vs_seed']:.2f}x per step{spread})")
    if "other_xla_train_images_per_s" in results:
        lines.append(f"  XLA {'off' if results['jit_compile'] else 'on '}         "
                     f"{results['other_xla_train_images_per_s']:7.1f} images/s   "
                     f"XLA trains {results['xla_speedup']:.2f}x as fast, first step "
                     f"{results['other_xla_first_step_s']:.2f} s")
    if "raw_fit_train_images_per_s" in results:
        lines.append(f"  raw model.fit   {results['raw_fit_train_images_per_s']:7.1f} images/s   "
                     f"framework overhead {100 * results['overhead_vs_raw_fit']:+.1f}% "
                     f"({100 * results['step_overhead_vs_raw_fit']:+.1f}% per step)")
    return "\n".join(lines)


def _seconds(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _megabytes(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"
