"""Python's garbage collector kept off the objects a command's process keeps for good.

Each full collection walks every object the collector tracks. TensorFlow's import leaves over a million of them and
a traced ResNet-56 hundreds of thousands more; a 6-run sweep ran a dozen full collections of 0.1-0.5 s each, about
2 s in all, and none of them freed what they walked: modules, and the set-ups kept for later seeds
(``shared_setup``). Where a command owns the process (``manage``), what is built to stay is moved out of the
collector's sight (``gc.freeze``) as soon as it is built: MLflow and its store after the first client
(``tracking.store``), the backend after its import (``startup_noise``), a set-up once it is kept. A set-up that is
let go is given back to the collector, so that its cycles are freed.

A caller of ``train`` in a longer process of its own (a notebook, the tests) keeps Python's collections as they are.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

_managed = False


def manage() -> None:
    """The commands' processes: from now on, what is built to stay is frozen (``kept_for_good``, ``settle``)."""
    global _managed
    _managed = True


def managed() -> bool:
    return _managed


@contextlib.contextmanager
def kept_for_good() -> Iterator[None]:
    """Around an import (and what it opens for the process): no collections inside, as what it builds stays, and
    all of it frozen after. The few objects that die in an import are left frozen: a collection first would walk
    the million that do not."""
    if not _managed:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def settle() -> None:
    """After building what stays (a kept set-up): collect what died on the way, then freeze what is left, so that
    no later full collection walks it again. The collection walks only what was built since the last freeze."""
    if _managed:
        gc.collect()
        gc.freeze()


def release() -> None:
    """A kept set-up was let go: give every frozen object back to the collector, so that a later collection (the
    next ``settle``, or Python's own) frees the set-up's cycles."""
    if _managed:
        gc.unfreeze()
