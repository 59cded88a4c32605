"""Putting a SLURM job that submitit started back in the queue, from inside the job.

Two causes, two routes: a job whose engine died asks SLURM directly and exits (`requeue_this_job`);
a job left incomplete by retry passes goes through submitit's own preemption handler
(`requeue_incomplete`). Either way the requeued job resumes from its `conversations.jsonl`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from harness.cluster.manifest import read_json
from harness.store import JobDir, write_json

log = logging.getLogger(__name__)
REQUEUE_WAIT_S = 120
"""How long to wait for SLURM to stop this process once the requeue is asked for."""


def slurm_job_id() -> str | None:
    """This job's id as `scontrol` takes it (`<array>_<task>` for an array task); None outside SLURM."""
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_this_job(limit: int, job_dir: Path) -> str | None:
    """Ask SLURM to run this job again from the start; what happened, or None outside a SLURM job.

    submitit reruns the same call when the job starts again, and the job resumes from its
    `conversations.jsonl`. `limit` bounds how often this job was requeued for a dead engine
    (`engine_death_requeues` in its `job_state.json`; requeues for a time limit, a preemption or an
    incomplete run count apart), so a job whose engine dies every time ends instead of cycling
    through the queue.
    """
    job_id = slurm_job_id()
    if job_id is None or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    path = JobDir(job_dir).launch_state
    state = read_json(path) or {}
    done = int(state.get("engine_death_requeues", 0))
    if done >= limit:
        return f"not requeued: SLURM job {job_id} was requeued {done} times for a dead engine (limit {limit})"
    state["engine_death_requeues"] = done + 1
    write_json(path, state)
    try:
        subprocess.run(
            ["scontrol", "requeue", job_id], check=True, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as error:
        state["engine_death_requeues"] = done
        write_json(path, state)
        return f"not requeued: `scontrol requeue {job_id}` failed ({error})"
    return f"requeued SLURM job {job_id} (engine death {done + 1} of {limit})"


def requeue_incomplete(job_dir: Path, limit: int, left: int) -> bool:
    """Ask SLURM to requeue this job (at most `limit` times per job); False where it cannot.

    submitit's preemption handler does the work: it saves the job's call, runs `scontrol
    requeue` and ends this process. The requeued job resumes from `conversations.jsonl`.
    """
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return False
    preempt_signal = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
    if not callable(signal.getsignal(preempt_signal)):
        return False  # no submitit handler here: the default action would kill the job
    state = read_json(JobDir(job_dir).launch_state) or {}
    done = int(state.get("requeues", 0))
    if done >= limit:
        log.warning("retry.requeues=%d spent: the job stays incomplete", limit)
        return False
    state.update(requeues=done + 1, note=f"incomplete with {left} conversations left: requeued")
    write_json(JobDir(job_dir).launch_state, state)
    log.warning(
        "%d conversations left unfinished: requeueing this job for more retry passes (%d of retry.requeues=%d)",
        left,
        done + 1,
        limit,
    )
    try:
        os.kill(os.getpid(), preempt_signal)
        time.sleep(REQUEUE_WAIT_S)  # the handler runs here and exits the process
    except Exception as error:  # submitit declined (e.g. timed out too many times)
        log.warning("the job could not requeue itself (%s): it stays incomplete", error)
        return False
    return False
