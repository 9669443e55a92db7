"""Keep TensorFlow's start-up chatter out of the commands' output.

TensorFlow 2.21 writes its oneDNN notice, "Could not find cuda drivers" (twice) and, on a machine
without a GPU, a ``failed call to cuInit`` line straight to the process's stderr before its logging is
set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence them and a CPU-only run looks like it failed.
The backend is therefore imported with stderr captured at the file-descriptor level, and whatever the
capture holds besides those known lines is written back. A user who sets ``TF_CPP_MIN_LOG_LEVEL``
gets everything, as TensorFlow prints it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

QUIET_BY_DEFAULT = "RESNET_LAB_DEFAULT_TF_LOG_LEVEL"  # set where the commands, not the user, chose the level
# Read when the commands start, before they set their default level.
USER_SET_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL" in os.environ and QUIET_BY_DEFAULT not in os.environ

# Lines TensorFlow prints on every start on a CPU machine; anything else is passed on.
NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
)


def is_noise(line: str) -> bool:
    return any(marker in line for marker in NOISE)


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Capture what native code writes to fd 2 while inside; afterwards write back all but the noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines() if not is_noise(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def import_backend_quietly() -> None:
    """Import Keras and start its backend (TensorFlow reports on devices at the first tensor) without the
    start-up chatter; does nothing once Keras is imported, or when the user chose a TensorFlow log level."""
    if "keras" in sys.modules or USER_SET_LOG_LEVEL:
        return
    with filtered_native_stderr():
        import keras

        keras.ops.zeros((1,))
