"""Hold Ctrl-C while a record is being written, so a database write or an epoch's record is never cut
in half (a SQLite write interrupted midway leaves the store locked for the rest of the process)."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from typing import Any, Callable, Iterator, List, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held back; a Ctrl-C that arrived meanwhile is raised when it ends."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    received: List[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or getattr(previous, "_deferring", False):  # ignored, or already held
        yield
        return

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    hold._deferring = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def uninterrupted(function: F) -> F:
    """Decorator form of ``deferred_interrupt``."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with deferred_interrupt():
            return function(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
