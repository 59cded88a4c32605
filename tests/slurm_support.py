"""The tiny-model vLLM job the engine-death and signal tests run, alone or under SLURM and requeued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import TOY
from tests.test_slurm import LAUNCHER, keys_on_disk, slurm_job_state, wait_for
from tests.tinymodel import tiny_model, tiny_vllm_overrides

ROOT = Path(__file__).resolve().parents[1]
TASKS, TRIALS = 5, 3
EVERY_CONVERSATION_ONCE = Counter({(task, trial): 1 for task in range(TASKS) for trial in range(TRIALS)})


def job_overrides(model_dir: Path) -> list[str]:
    """Toy conversations of the tiny model, one at a time, a second or two each."""
    return [
        *tiny_vllm_overrides(model_dir, max_model_len=4096),
        *TOY,
        f"env.trials={TRIALS}",
        "env.max_steps=3",
        "concurrency=1",
        "agent.sampling.max_tokens=64",
        "user.sampling.max_tokens=16",
    ]


def records(job_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job_dir / "conversations.jsonl").read_text().splitlines()]


@dataclass(frozen=True)
class SlurmJob:
    """The one job of a running sweep, started on its SLURM node."""

    sweep: subprocess.Popen[str]
    sweep_dir: Path
    job_dir: Path
    job_id: str
    process: Any
    """The job's `psutil.Process` on the node: its children are the vLLM engine's processes."""


@contextmanager
def tiny_vllm_job_under_slurm(tmp_path: Path, name: str) -> Iterator[SlurmJob]:
    """A sweep of one tiny-model job (`job_overrides`) under SLURM, once the job runs; the sweep is
    killed and its SLURM jobs cancelled on the way out."""
    import psutil

    sweep_dir = tmp_path / "sweep"
    job_dir = sweep_dir / "tiny" / "toy-test" / "control" / "seed0"
    command = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        *[o for o in LAUNCHER if not o.startswith(("hydra.launcher.mem_gb", "name="))],
        "hydra.launcher.mem_gb=4",
        f"name={name}",
        f"hydra.sweep.dir={sweep_dir}",
        *job_overrides(tiny_model()),
    ]
    sweep = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:

        def started() -> bool:  # the launcher records the job as pending first; the job adds its pid
            path = job_dir / "job_state.json"
            return path.exists() and "pid" in json.loads(path.read_text())

        wait_for(started, "the job to start", timeout_s=300)
        state = json.loads((job_dir / "job_state.json").read_text())
        yield SlurmJob(sweep, sweep_dir, job_dir, state["slurm_job_id"], psutil.Process(state["pid"]))
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
        subprocess.run(["scancel", f"--name=tau-emotion-{name}"], check=False, capture_output=True)


def wait_requeued(job: SlurmJob) -> None:
    wait_for(lambda: slurm_job_state(job.job_id) == "PENDING", "the job to be requeued")


def finish_requeued(job: SlurmJob) -> str:
    """Let the requeued job start again now and wait for the sweep to end: its output."""
    # SLURM holds a requeued job for a while before it may start again; let it start now, not in
    # the second its old credential was revoked (a relaunch then is killed: "credential revoked").
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], check=True)
    output, _ = job.sweep.communicate(timeout=600)
    return output


def assert_finished_on_the_second_attempt(job: SlurmJob, output: str) -> None:
    """The sweep succeeded, every conversation is on disk once and none failed for the requeue."""
    assert job.sweep.returncode == 0, output[-4000:]
    assert keys_on_disk(job.job_dir) == EVERY_CONVERSATION_ONCE
    assert all(r["termination"] not in ("infra_error", "harness_error") for r in records(job.job_dir))
    entry = json.loads((job.sweep_dir / "manifest.json").read_text())["jobs"][0]
    assert (entry["state"], entry["attempt"]) == ("complete", 2)
