"""What Python's garbage collector sees, for the tests of ``runtime/heap.py``."""

from __future__ import annotations

import gc


def collector_sees(thing: object) -> bool:
    """Whether a full collection walks ``thing`` (frozen objects are not in ``gc.get_objects``)."""
    return any(o is thing for o in gc.get_objects())
