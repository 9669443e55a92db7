"""Keep TensorFlow's start-up chatter out of the commands' output, unless ``RESNET_LAB_DEBUG=1`` asks for it.

TensorFlow 2.21 writes its oneDNN notice, "Could not find cuda drivers" (twice) and, on a machine
without a GPU, a ``failed call to cuInit`` line straight to the process's stderr before its logging is
set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence them and a CPU-only run looks like it failed.
The backend is therefore imported with stderr captured at the file-descriptor level, and whatever the
capture holds besides those known lines is written back. A user who sets ``TF_CPP_MIN_LOG_LEVEL``
gets everything, as TensorFlow prints it.

``RESNET_LAB_DEBUG=1`` (an environment variable, so that every process of a sweep reads it: joblib's workers,
submitit's jobs, the autotune worker) brings it all back: TensorFlow's own log level, every native line, and the
project's debug lines (why a job did not share an earlier job's set-up, what each autotune candidate cost).
It changes no config key, so a run's config hash, and with it resuming and skipping, are the same either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

DEBUG = "RESNET_LAB_DEBUG"  # "1": every library's log lines and the project's debug lines
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


def debugging() -> bool:
    """Whether ``RESNET_LAB_DEBUG`` asks for everything."""
    return os.environ.get(DEBUG, "").strip().lower() not in ("", "0", "false", "no")


def show_debug_lines() -> None:
    """Under ``RESNET_LAB_DEBUG``, the project's debug lines; called in each job, after Hydra set up its logging."""
    if debugging():
        logging.getLogger("resnet_lab").setLevel(logging.DEBUG)
        logging.getLogger("absl").setLevel(logging.NOTSET)  # conf/hydra/job_logging keeps it to warnings


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
    start-up chatter, unless the user chose a TensorFlow log level or ``RESNET_LAB_DEBUG``; what the import built
    is kept out of the garbage collector's way (``heap``). Does nothing once Keras is imported."""
    from resnet_lab.runtime import heap

    if "keras" in sys.modules:
        return
    quiet = not (USER_SET_LOG_LEVEL or debugging())
    with heap.kept_for_good(), (filtered_native_stderr() if quiet else contextlib.nullcontext()):
        import keras

        keras.ops.zeros((1,))
