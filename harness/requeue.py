"""Putting a SLURM job that submitit started back in the queue, from inside the job."""

from __future__ import annotations

import os
import subprocess


def slurm_job_id() -> str | None:
    """This job's id as `scontrol` takes it (`<array>_<task>` for an array task); None outside SLURM."""
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_this_job(limit: int) -> str | None:
    """Ask SLURM to run this job again from the start; what happened, or None outside a SLURM job.

    submitit reruns the same call when the job starts again, and the job resumes from its
    `conversations.jsonl`. `limit` bounds how often a job may have been restarted already
    (`SLURM_RESTART_COUNT`, which counts requeues of every cause), so a job whose engine dies
    every time ends instead of cycling through the queue.
    """
    job_id = slurm_job_id()
    if job_id is None or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if restarts >= limit:
        return f"not requeued: SLURM job {job_id} already ran {restarts + 1} times (limit {limit} requeues)"
    try:
        subprocess.run(
            ["scontrol", "requeue", job_id], check=True, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"not requeued: `scontrol requeue {job_id}` failed ({error})"
    return f"requeued SLURM job {job_id} (restart {restarts + 1} of {limit})"
