"""Facts for comparing architectures, read off a built model: depth, parameters, FLOPs, shapes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

import keras
import numpy as np

from resnet_lab.model.inputs import INPUT_NORMALIZE, expected_input
from resnet_lab.model.plan import BlockSpec, block_plan, stage_name

if TYPE_CHECKING:
    from resnet_lab.model.spec import ModelConfig

_SIDE_BRANCH = ("_shortcut_", "_se_")  # weighted layers off the main path do not count towards depth


@dataclass
class StageReport:
    name: str
    blocks: int
    output_shape: List[int]
    params: int


@dataclass
class ModelReport:
    name: str
    depth: int  # weighted layers on the main path: convs plus the dense head (18 for ResNet-18)
    params_total: int  # every weight, BN moving statistics included (Keras' count_params)
    params_trainable: int
    flops: int  # per image, one multiply-add = 2 FLOPs, convolutions and dense layers
    activation_bytes: int  # per image: every layer's output at its compute dtype, what training keeps
    input_shape: List[int]
    output_shape: List[int]
    stages: List[StageReport] = field(default_factory=list)
    stem: str = ""
    block: str = ""
    input: str = ""  # what the model must be given: raw images it normalizes itself, or preprocessed ones

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    def to_text(self) -> str:
        rows = [("stage", "blocks", "output", "params")]
        rows += [(s.name, str(s.blocks or "-"), _shape(s.output_shape), f"{s.params:,}") for s in self.stages]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        table = "\n".join(
            "  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
            for r in rows
        )
        return "\n".join([
            f"{self.name}  (stem={self.stem}, block={self.block})",
            f"  input {_shape(self.input_shape)} -> output {_shape(self.output_shape)}",
            *([f"  takes {self.input}"] if self.input else []),
            table,
            f"  depth            {self.depth}",
            f"  params total     {self.params_total:,}",
            f"  params trainable {self.params_trainable:,}",
            f"  FLOPs per image  {self.flops:,} ({self.flops / 1e9:.3f} GFLOPs, multiply-add = 2)",
            f"  activations      {self.activation_bytes / 2**20:.2f} MiB per image (layer outputs kept for training)",
        ])


def analyze(model: keras.Model, spec: Optional[ModelConfig] = None) -> ModelReport:
    """The facts of ``model``; ``spec``, what it was built from, names its stem, block type and stages
    (without it the report has the stem row only: stages are read from the plan, not guessed from names)."""
    plan = block_plan(spec) if spec is not None else []
    return ModelReport(
        name=model.name,
        depth=depth(model),
        params_total=int(model.count_params()),
        params_trainable=trainable_params(model),
        flops=flops(model),
        activation_bytes=activation_bytes(model),
        input_shape=_dims(model.input_shape),
        output_shape=_dims(model.output_shape),
        stages=stages(model, plan),
        stem=spec.stem.name if spec is not None else "",
        block=spec.block.type if spec is not None else "",
        input=expected_input(model),
    )


def trainable_params(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def depth(model: keras.Model) -> int:
    return sum(
        1 for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        and not any(tag in layer.name for tag in _SIDE_BRANCH)
    )


def flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of every convolution and dense layer for one image.

    BN, activations, pooling and additions are left out, the usual convention (fvcore, torchvision's
    published GFLOPS), so figures compare with the literature.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output.shape[1:]
            in_c = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += 2 * out_h * out_w * out_c * kh * kw * in_c // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def activation_bytes(model: keras.Model) -> int:
    """Bytes of every layer's output for one image: an estimate of the memory training needs per image.

    Backpropagation keeps (roughly) each layer's output until the backward pass reaches it, so this
    grows with batch size and is what runs out first on large inputs.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name == INPUT_NORMALIZE:
            continue  # the images, and the images standardized: neither is a learned layer's output
        for tensor in keras.tree.flatten(layer.output):
            elements = int(np.prod([d for d in tensor.shape[1:]]))
            total += elements * np.dtype(tensor.dtype).itemsize
    return int(total)


def stages(model: keras.Model, plan: Optional[Sequence[BlockSpec]] = None) -> List[StageReport]:
    """The stem and each stage of ``plan``: block count, output shape, parameters."""
    reports = []
    stem = _layers_named(model, "stem_")
    if stem:
        candidates = ["stem_pool", "stem_relu", "stem_conv"]  # a deep stem's last conv is stem_conv too
        reports.append(_report("stem", 0, stem, candidates))
    last_blocks = {planned.stage: planned for planned in plan or ()}  # each stage's last block wins
    for last in last_blocks.values():  # blocks count from 1: the last one's number is the stage's block count
        name = stage_name(last.stage)
        candidates = [f"{last.name}_out", f"{last.name}_add"]  # pre-activation blocks end on the addition
        reports.append(_report(name, last.block, _layers_named(model, f"{name}_"), candidates))
    return reports


def _layers_named(model: keras.Model, prefix: str) -> List[Any]:
    return [layer for layer in model.layers if layer.name.startswith(prefix)]


def _report(name: str, blocks: int, group: List[Any], candidates: List[str]) -> StageReport:
    """One row; its output is the first of ``candidates`` present, found by name rather than by layer order."""
    by_name = {layer.name: layer for layer in group}
    output = next(by_name[candidate] for candidate in candidates if candidate in by_name)
    return StageReport(name=name, blocks=blocks, output_shape=_dims(output.output.shape),
                       params=int(sum(layer.count_params() for layer in group)))


def _dims(shape) -> List[int]:
    return [int(d) for d in shape[1:]]


def _shape(dims: List[int]) -> str:
    return "x".join(str(d) for d in dims)
