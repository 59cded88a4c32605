"""Under SLURM, a job left incomplete requeues itself the way submitit requeues a preempted job."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from harness.store import write_json
from harness.sweep import JOB_STATE, read_json

log = logging.getLogger(__name__)
REQUEUE_WAIT_S = 120
"""How long to wait for SLURM to stop this process once the requeue is asked for."""


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
    state = read_json(job_dir / JOB_STATE) or {}
    done = int(state.get("requeues", 0))
    if done >= limit:
        log.warning("retry.requeues=%d spent: the job stays incomplete", limit)
        return False
    state.update(requeues=done + 1, note=f"incomplete with {left} conversations left: requeued")
    write_json(job_dir / JOB_STATE, state)
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
