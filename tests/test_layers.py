"""The package's layers, read from the code's own imports: no import runs back up, and no module imports itself
through others.

The order is the README's *Layout*: each layer may import the layers below it, never one above, and the units
of one layer (``autotune`` and ``compare``, ``model`` and ``data``, the commands) stay apart. Every import
counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "resnet_lab"

# Top to bottom; a unit is a package (folder) or a module at the root of resnet_lab.
LAYERS = [
    ["cli"],  # the console entry points
    ["until_resolved", "sweeps"],  # the sweepers that run in rounds (until_resolved, sweeps/optuna), built on the sweep
    ["train", "bench", "describe", "sweep", "zoo", "model_logging"],  # the commands (and an old models' loader)
    ["autotune", "compare"],  # what the commands orchestrate
    ["training"],
    ["tracking", "config"],  # MLflow, and the configs: neither knows the other
    ["model", "data"],
    ["runtime"],
    ["errors"],
]
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = ["resnet_lab", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> Set[str]:
    """The project's modules that ``name`` imports, anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` where there is one.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                         for alias in node.names)
    return {target for target in found if target in MODULES and target != name}


GRAPH: Dict[str, Set[str]] = {name: imports_of(name) for name in MODULES}


def unit_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_unit_of_the_package_has_a_layer():
    units = {unit_of(name) for name in MODULES} - {""}
    assert units <= set(LAYER_OF), f"give these a layer in LAYERS and the README's Layout: {units - set(LAYER_OF)}"


def test_no_import_runs_back_up_or_across_a_layer():
    wrong = []
    for name, targets in GRAPH.items():
        unit = unit_of(name)
        for target in sorted(targets):
            other = unit_of(target)
            if unit and other and other != unit and LAYER_OF[other] <= LAYER_OF[unit]:
                wrong.append(f"{name} -> {target} ({'across its layer' if LAYER_OF[other] == LAYER_OF[unit] else 'up'})")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_through_others():
    circles: List[List[str]] = []
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


@pytest.mark.parametrize("package", sorted(unit for unit in LAYER_OF if (PACKAGE / unit).is_dir()))
def test_each_package_states_its_job_in_its_init(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and doc.strip(), f"resnet_lab/{package}/__init__.py: say in one line what the package is for"


# -- what a layer costs to import ------------------------------------------------------------------

HEAVY = ("keras", "tensorflow", "jax", "mlflow", "sklearn", "numpy")


def modules_loaded_by(code: str) -> list:
    import subprocess
    import sys

    probe = f"{code}\nimport sys; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_composing_and_checking_a_training_config_loads_no_framework():
    code = """
from hydra import compose, initialize_config_dir
from resnet_lab.config.paths import CONFIG_DIR, EXPERIMENTS_DIR
from resnet_lab.config.schema import register_configs
from resnet_lab.config.validation import validate_train_config
register_configs(EXPERIMENTS_DIR)
with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
    cfg = compose("train", overrides=["experiment=digits_depth", "model=resnet50", "optimizer=sgd"])
validate_train_config(cfg)
"""
    assert modules_loaded_by(code) == []
