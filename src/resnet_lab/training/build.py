"""The one recipe for a model ready to train: seeded, built, behind its augmentation, and compiled.

A training run, the probe's worker process and the benchmark all build through ``Recipe.build``, so
what a probe times and what a benchmark measures is the model a run trains, weights and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Tuple


class Compiled(NamedTuple):
    """The bare network (what is analysed and saved) and the compiled model that trains it."""

    network: Any
    model: Any  # the network behind its augmentation layers, or the network itself without them
    draws: Any = None  # what the build drew from the seeded generators (``reseed.BuildDraws``): how to replay it


@dataclass(frozen=True)
class Recipe:
    """What building a run's model takes; plain data, so a worker process can be handed it (pickled)."""

    cfg: Any  # the whole run config: model, data.augment, optimizer, schedule, trainer, seed
    spec: Any  # cfg.model as the typed spec the builder takes (``model.spec.ModelConfig``)
    image_shape: Tuple[int, ...]
    num_classes: int
    steps_per_epoch: int  # what the learning-rate schedule counts in
    augment: bool = True  # False: the network alone (the benchmark feeds in-memory images)
    # The network's input layer (``model.inputs.InputNormalization``): the data's per-channel statistics.
    # None: a network that takes preprocessed images.
    normalization: Any = None

    @classmethod
    def of(cls, cfg: Any, spec: Any, image_shape: Any, num_classes: int, steps_per_epoch: int,
           augment: bool = True, splits: Any = None) -> "Recipe":
        """``splits`` (``data.splits.Splits``) gives the statistics the network normalizes its input with."""
        from resnet_lab.model.inputs import InputNormalization

        normalization = None if splits is None else InputNormalization.of(splits.channel_mean, splits.channel_std)
        return cls(cfg, spec, tuple(int(d) for d in image_shape), int(num_classes), int(steps_per_epoch), augment,
                   normalization)

    def build(self, precision: str, jit_compile: Any) -> Compiled:
        """The model in this precision and XLA setting, from the run's seed: every build starts from the
        same weights, whichever setting it is in."""
        from resnet_lab.data.augment import with_augmentation
        from resnet_lab.model.builder import build_model
        from resnet_lab.model.inputs import INPUT_NORMALIZE
        from resnet_lab.runtime.backend import seed_everything
        from resnet_lab.training.optim import compile_model
        from resnet_lab.training.reseed import Recorder

        seed_everything(self.cfg.seed, self.cfg.trainer.deterministic)
        recorder = Recorder(self.cfg.seed)
        network = build_model(self.spec, self.image_shape, self.num_classes, precision=precision,
                              normalization=self.normalization)
        # normalize -> augment -> network: the augmentation works on standardized images, as before.
        model = with_augmentation(network, self.cfg.data.augment, after=INPUT_NORMALIZE) if self.augment else network
        compile_model(model, self.cfg, self.num_classes, self.steps_per_epoch, precision, jit_compile)
        return Compiled(network, model, recorder.draws())
