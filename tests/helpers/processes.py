"""The commands as users run them: the installed console scripts, in a fresh process each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

from helpers.configs import REPO

BIN = Path(sys.executable).parent
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}
AS_A_USER = {"TF_CPP_MIN_LOG_LEVEL": None}  # no log level of the tests': what the commands print on their own
# Lines a user's log must not carry at default verbosity: native start-up notices, and TensorFlow saying that
# functions were traced again (seeds of one config share their traced functions: none is traced twice).
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers", "cuInit", "cpu_feature_guard",
         "triggered tf.function retracing")


def noise_in(*outputs: str) -> List[str]:
    """The lines of ``outputs`` (a command's stdout, stderr, its jobs' log files) that are noise."""
    return [line for text in outputs for line in text.splitlines() if any(marker in line for marker in NOISE)]


def _env(extra: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, str]:
    """The test's environment with ``extra`` on top; a None value removes that variable."""
    env = {**os.environ, **QUIET, **(extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)  # what a user has: Hydra's short errors
    return {key: value for key, value in env.items() if value is not None}


def run_cli(command: str, args: List[str], cwd: Path, env: Optional[Dict[str, Optional[str]]] = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``resnet-lab-<command>`` to the end; stdout and stderr come back as text."""
    return subprocess.run([str(BIN / command), *args], cwd=cwd, env=_env(env), capture_output=True, text=True,
                          timeout=timeout)


def start_cli(command: str, args: List[str], cwd: Path,
              env: Optional[Dict[str, Optional[str]]] = None) -> subprocess.Popen:
    """Start ``resnet-lab-<command>`` and return at once, for tests that signal or kill it mid-run.

    The command starts with Ctrl-C's default handling, as in a user's terminal, even where the tests
    themselves run in the background of a non-interactive shell (which starts them with SIGINT ignored).
    """
    return subprocess.Popen([str(BIN / command), *args], cwd=cwd, env=_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal)


def _as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_python(script: str, cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 900) -> dict:
    """Run ``script`` in a fresh interpreter that can import the tests' helpers; it prints one JSON line last.

    A process picks its Keras backend once, at import: a fresh one is how a test changes it.
    """
    paths = os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd,
                            env=_env({"PYTHONPATH": paths, **(env or {})}), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
