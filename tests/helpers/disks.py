"""Small filesystems for disk-full faults: a tmpfs mounted in the test's folder, filled for real."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

PAGE = 4096  # tmpfs hands out space in pages


@contextlib.contextmanager
def small_disk(folder: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``folder``; skips where mounting is not permitted (not root, no
    mount), except under CI=true, where CI runs as root and a skip would hide the fault tests."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        mounted = subprocess.CompletedProcess([], 1, "", "no mount command")
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the disk-full tests need root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the disk of ``folder`` until ``leave`` bytes (or less) are free; returns the filler to delete."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while shutil.disk_usage(folder).free > leave:
            room = shutil.disk_usage(folder).free - leave
            try:
                os.write(descriptor, b"\0" * max(1, min(room, 1 << 20)))
            except OSError:  # ENOSPC: full
                break
    finally:
        os.close(descriptor)
    return filler
