"""A model built for one seed, set to exactly what a fresh build from another seed holds, without building,
compiling or tracing again.

Where a build's randomness comes from (Keras 3): each random initializer and each ``keras.random.SeedGenerator``
made without a seed draws one integer from Python's ``random`` when its layer is made, and keeps it; the
initial values follow from those integers alone. Every other initial value (BatchNorm statistics, constant
initializers, the optimizer's slots, step count and loss scale) is the same whatever the seed. So a fresh build
from seed ``s`` is replayed by drawing the same number of integers from ``random.Random(s)``: each random
initializer runs again with the integer it would have drawn, each generator starts from ``[integer, 0]``, and
every other variable takes the value the first build started with.

A plan is made only when that account is complete, and proved on the first build: every draw the build made
is claimed by exactly one initializer or generator the plan found, NumPy's generator was not used, and the
plan recomputes each random variable of the first build bit for bit. Otherwise there is no plan, and the caller
builds anew (``shared_setup``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

MAX_DRAWS = 100_000  # a build that draws more is not replayed (nor searched for longer)
DRAW_LOW, DRAW_HIGH = 1, int(1e9)  # keras.random.make_default_seed: randint(1, 1e9)


@dataclass(frozen=True)
class BuildDraws:
    """What one build took from the process's random generators: how many integers it drew from Python's
    ``random`` (None: it used it otherwise, or used NumPy's global generator, so it cannot be replayed)."""

    seed: int
    count: Optional[int]


class Recorder:
    """Around a build that starts right after seeding with ``seed``: ``draws()`` says what it drew."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._numpy = np.random.get_state()

    def draws(self) -> BuildDraws:
        after = np.random.get_state()
        numpy_untouched = after[2] == self._numpy[2] and np.array_equal(after[1], self._numpy[1])
        return BuildDraws(self.seed, count_draws(self.seed, random.getstate()) if numpy_untouched else None)


def count_draws(seed: int, state: Any) -> Optional[int]:
    """How many ``randint(1, 1e9)`` draws take ``random.Random(seed)`` to ``state``; None if none do."""
    replay = random.Random(seed)
    for count in range(MAX_DRAWS + 1):
        if replay.getstate() == state:
            return count
        replay.randint(DRAW_LOW, DRAW_HIGH)
    return None


def drawn(seed: int, count: int) -> Tuple[List[int], Any]:
    """The integers a build from ``seed`` draws, and Python's generator state after them."""
    replay = random.Random(seed)
    values = [replay.randint(DRAW_LOW, DRAW_HIGH) for _ in range(count)]
    return values, replay.getstate()


@dataclass
class Plan:
    """How to set a model (and its optimizer) to a fresh build's state for any seed."""

    count: int  # draws per build
    initialized: List[Tuple[Any, Any, int]]  # (variable, its initializer, which draw seeds it)
    generators: List[Tuple[Any, int]]  # (a SeedGenerator's state variable, which draw seeds it)
    fixed: List[Tuple[Any, np.ndarray]]  # every other variable, with the value every build starts from

    def apply(self, seed: int) -> None:
        """Set every variable as a build from ``seed`` starts, and Python's ``random`` as that build leaves it."""
        values, state = drawn(seed, self.count)
        for variable, initializer, index in self.initialized:
            variable.assign(_initial_value(initializer, values[index], variable))
        for variable, index in self.generators:
            variable.assign(np.array([values[index], 0], dtype=np.dtype(variable.dtype)))
        for variable, value in self.fixed:
            variable.assign(value)
        random.setstate(state)


def plan_for(model: Any, draws: BuildDraws) -> Tuple[Optional[Plan], str]:
    """The plan for ``model``, fresh from the build ``draws`` describes (nothing trained yet), and its optimizer;
    or None and why it cannot be replayed."""
    if draws.count is None:
        return None, ("its build drew random numbers otherwise than Keras' seeds from Python's generator "
                      "(or from NumPy's)")
    values, _ = drawn(draws.seed, draws.count)
    index_of: Dict[int, int] = {}
    for index, value in enumerate(values):
        if value in index_of:
            return None, "two of its build's seeds are equal, so which layer drew which is ambiguous"
        index_of[value] = index
    initialized, generators, claimed = [], [], set()

    def claim(value: int) -> Optional[int]:
        index = index_of.get(value)
        if index is None or index in claimed:
            return None
        claimed.add(index)
        return index

    for layer, name, initializer in _random_initializers(model):
        variable = _variable_of(layer, name)
        index = claim(initializer.seed)
        if variable is None or index is None:
            return None, f"the initializer {name} of layer {layer.name} is not one of its build's draws"
        initialized.append((variable, initializer, index))
    for generator in _unseeded_generators(model):
        index = claim(int(np.asarray(generator.state.numpy())[0]))
        if index is None:
            return None, f"the seed generator {generator.name} did not start from one of its build's draws"
        generators.append((generator.state, index))
    if len(claimed) != draws.count:
        return None, f"{draws.count - len(claimed)} of its build's {draws.count} draws went to no layer found"
    for variable, initializer, index in initialized:  # the proof: the first build, recomputed
        if not np.array_equal(_initial_value(initializer, values[index], variable), variable.numpy()):
            return None, f"{variable.path} does not come out of its initializer as it was built"
    seeded = {id(v) for v, _, _ in initialized} | {id(v) for v, _ in generators}
    fixed = [(v, np.array(v.numpy(), copy=True)) for v in _state_variables(model) if id(v) not in seeded]
    return Plan(draws.count, initialized, generators, fixed), ""


def _initial_value(initializer: Any, seed: int, variable: Any) -> Any:
    """What ``initializer`` gives ``variable`` when it drew ``seed``: a copy of it with that seed, called."""
    again = type(initializer).from_config({**initializer.get_config(), "seed": seed})
    return again(shape=tuple(variable.shape), dtype=variable.dtype)


def _layers(model: Any) -> Iterator[Any]:
    """The model and its layers, nested models included."""
    yield model
    for layer in getattr(model, "layers", ()):
        yield from _layers(layer)


def _random_initializers(model: Any) -> Iterator[Tuple[Any, str, Any]]:
    """(layer, weight name, initializer) for each initializer that drew its seed: ``kernel_initializer`` makes the
    layer's ``kernel``, as Keras' layers name them."""
    import keras

    seen = set()
    for layer in _layers(model):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for attribute, value in vars(layer).items():
            if (isinstance(value, keras.initializers.Initializer) and attribute.endswith("_initializer")
                    and "seed" in value.get_config() and value.get_config()["seed"] is None):
                yield layer, attribute[: -len("_initializer")], value


def _variable_of(layer: Any, name: str) -> Optional[Any]:
    found = [v for v in layer.weights if v.name == name]
    return found[0] if len(found) == 1 else None


def _unseeded_generators(model: Any) -> List[Any]:
    import keras

    found: Dict[int, Any] = {}
    for layer in _layers(model):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator) and value.get_config()["seed"] is None:
                found[id(value)] = value
    return list(found.values())


def _state_variables(model: Any) -> Sequence[Any]:
    """Every variable a run changes: the model's (weights, statistics, generator states), the optimizer's (with a
    loss-scaling optimizer's inner one) and the metrics'."""
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", None)
    found: Dict[int, Any] = {}
    for variable in [*model.variables, *optimizer.variables, *(inner.variables if inner is not None else ()),
                     *model.metrics_variables]:
        found.setdefault(id(variable), variable)
    return list(found.values())
