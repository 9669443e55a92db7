"""Jobs run by a cluster scheduler (Slurm): which job a run was, and a clean end when the job is cancelled.

The Slurm launcher runs each sweep job through submitit, which ignores SIGTERM (it waits for its own
signal before a time limit). ``scancel`` sends SIGTERM, then SIGKILL after the cluster's KillWait: a
job that ignored the first would die RUNNING. Under Slurm, SIGTERM is therefore handled as Ctrl-C is:
the run ends KILLED with its last checkpoint kept, and ``trainer.resume=true`` continues it.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Dict, Mapping, Optional

# Slurm's variables in a job, and the run tags that keep them: `sacct -j <slurm.job_id>` finds the job.
SLURM_TAGS = {
    "SLURM_JOB_ID": "slurm.job_id",
    "SLURM_ARRAY_JOB_ID": "slurm.array_job_id",
    "SLURM_ARRAY_TASK_ID": "slurm.array_task_id",
    "SLURM_CLUSTER_NAME": "slurm.cluster",
    "SLURMD_NODENAME": "slurm.node",
}
CANCELLED = "cancelled by Slurm (SIGTERM): the MLflow run is KILLED and its last checkpoint kept; " \
            "rerun the sweep with trainer.resume=true to continue it"

_cancelled = False


def under_slurm(environ: Optional[Mapping[str, str]] = None) -> bool:
    return bool((os.environ if environ is None else environ).get("SLURM_JOB_ID"))


def scheduler_tags(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The Slurm job (and array task) this process runs in, as run tags; none outside Slurm."""
    environ = os.environ if environ is None else environ
    return {tag: environ[name] for name, tag in SLURM_TAGS.items() if environ.get(name)}


def end_cleanly_when_cancelled() -> None:
    """Under Slurm, turn the SIGTERM of ``scancel`` (or of a preemption) into the Ctrl-C the run handles.

    The signal is passed on as SIGINT, so an epoch being checkpointed and logged is finished first
    (``interrupts.deferred_interrupt``), exactly as after a Ctrl-C.
    """
    if not under_slurm():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A process started in the background by a non-interactive shell ignores SIGINT: the SIGINT
        # passed on below would then be lost, and the cancelled job would die RUNNING after all.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def cancel(signum: int, frame: Any) -> None:
        global _cancelled
        _cancelled = True
        os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGTERM, cancel)


def was_cancelled() -> bool:
    """Whether the scheduler cancelled this job (a SIGTERM arrived under Slurm)."""
    return _cancelled
