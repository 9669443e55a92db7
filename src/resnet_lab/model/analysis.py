"""Facts for comparing architectures, read off a built model: depth, parameters, FLOPs, shapes."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

import keras
import numpy as np

_STAGE = re.compile(r"^(stage\d+)_block(\d+)_")
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
            table,
            f"  depth            {self.depth}",
            f"  params total     {self.params_total:,}",
            f"  params trainable {self.params_trainable:,}",
            f"  FLOPs per image  {self.flops:,} ({self.flops / 1e9:.3f} GFLOPs, multiply-add = 2)",
            f"  activations      {self.activation_bytes / 2**20:.2f} MiB per image (layer outputs kept for training)",
        ])


def analyze(model: keras.Model, stem: str = "", block: str = "") -> ModelReport:
    return ModelReport(
        name=model.name,
        depth=depth(model),
        params_total=int(model.count_params()),
        params_trainable=trainable_params(model),
        flops=flops(model),
        activation_bytes=activation_bytes(model),
        input_shape=_dims(model.input_shape),
        output_shape=_dims(model.output_shape),
        stages=stages(model),
        stem=stem,
        block=block,
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
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.output):
            elements = int(np.prod([d for d in tensor.shape[1:]]))
            total += elements * np.dtype(tensor.dtype).itemsize
    return int(total)


def stages(model: keras.Model) -> List[StageReport]:
    """The stem and each stage: block count, output shape, parameters."""
    groups: Dict[str, List[Any]] = {}
    blocks: Dict[str, int] = {}
    for layer in model.layers:
        match = _STAGE.match(layer.name)
        if match:
            key = match.group(1)
            blocks[key] = max(blocks.get(key, 0), int(match.group(2)))
        elif layer.name.startswith("stem_"):
            key = "stem"
        else:
            continue
        groups.setdefault(key, []).append(layer)
    return [
        StageReport(
            name=key,
            blocks=blocks.get(key, 0),
            output_shape=_dims(_output_layer(group, key, blocks.get(key, 0)).output.shape),
            params=int(sum(layer.count_params() for layer in group)),
        )
        for key, group in groups.items()
    ]


def _output_layer(group: List[Any], key: str, last_block: int):
    """The layer whose output leaves the stem or stage, found by name rather than by layer order."""
    by_name = {layer.name: layer for layer in group}
    if key == "stem":
        candidates = ["stem_pool", "stem_relu", "stem_conv"]  # a deep stem's last conv is stem_conv too
    else:
        candidates = [f"{key}_block{last_block}_out", f"{key}_block{last_block}_add"]
    return next(by_name[name] for name in candidates if name in by_name)


def _dims(shape) -> List[int]:
    return [int(d) for d in shape[1:]]


def _shape(dims: List[int]) -> str:
    return "x".join(str(d) for d in dims)
