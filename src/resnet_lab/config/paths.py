"""Where the config tree and the experiments are: inside an installed wheel, else at the checkout's top level."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def _find(folder: str) -> Path:
    packaged = _PACKAGE / folder
    return packaged if packaged.is_dir() else _PACKAGE.parent.parent / folder


CONFIG_DIR = _find("conf")
EXPERIMENTS_DIR = _find("experiments")
