"""The job's concurrency is capped to its engines' KV-cache capacity (`env.kv_tokens`), never raised."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.job.app import build_job
from harness.job.capacity import KVTokens, concurrency_cap
from harness.job.runner import run_job
from tests.helpers import TOY, compose_config

RETAIL = KVTokens(shared=4100, agent=6000, user=2000)


def engine(tokens: int | None) -> Any:
    return SimpleNamespace(kv_cache_tokens=tokens)


def test_a_shared_engine_counts_the_users_context_too(caplog: pytest.LogCaptureFixture) -> None:
    agent = engine(400_000)  # Llama-3.1-8B at 0.9 of an 80 GB GPU
    with caplog.at_level(logging.INFO, logger="harness.job.capacity"):
        in_force, record = concurrency_cap(128, RETAIL, agent, agent, "retail")
    assert in_force == (400_000 - 4100) // 8000 == 49
    assert record is not None and record["capped"] and record["fits"] == {"agent": 49}
    assert record["user_on_agent_engine"] is True
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "concurrency 128 capped to 49: the agent's vLLM engine holds 400,000 KV-cache tokens"
    )
    assert "agent 6,000 + user 2,000, env.kv_tokens of env=retail" in line


def test_concurrency_is_never_raised_and_a_user_engine_of_its_own_counts_alone() -> None:
    in_force, record = concurrency_cap(32, RETAIL, engine(1_000_000), engine(1_000_000), "retail")
    assert in_force == 32 and record is not None and not record["capped"]
    assert record["fits"] == {"agent": (1_000_000 - 4100) // 6000, "user": 1_000_000 // 2000}
    in_force, record = concurrency_cap(128, RETAIL, engine(10**7), engine(100_000), "retail")
    assert in_force == 50 and record is not None and "the user's vLLM engine" in record["reason"]


def test_no_engine_or_no_figure_leaves_concurrency_as_configured() -> None:
    assert concurrency_cap(128, RETAIL, engine(None), engine(None), "retail") == (128, None)
    assert concurrency_cap(128, None, engine(10**6), engine(10**6), "retail") == (128, None)
    tight = engine(5000)  # less room than one conversation: still one at a time
    assert concurrency_cap(8, RETAIL, tight, tight, "retail")[0] == 1


def test_the_job_runs_at_the_cap_and_job_json_records_it(tmp_path: Path) -> None:
    job = build_job(compose_config([*TOY, "backend=oracle", "concurrency=64"]), tmp_path)
    assert job.kv_tokens == RETAIL  # the toy shop's env is retail's config
    job.backend.kv_cache_tokens = 4100 + 3 * 8000  # type: ignore[attr-defined]
    asyncio.run(run_job(job))
    assert job.concurrency == 3
    recorded = json.loads((tmp_path / "job.json").read_text())["concurrency"]
    assert recorded["configured"] == 64 and recorded["in_force"] == 3
    assert recorded["kv_cache_tokens"] == {"agent": 28100}


def test_kv_tokens_are_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    one = build_job(compose_config([*TOY, "backend=oracle"]), tmp_path)
    two = build_job(compose_config([*TOY, "backend=oracle", "env.kv_tokens.agent=9000"]), tmp_path)
    assert one.fingerprint == two.fingerprint and "kv_tokens" not in one.fingerprint["env"]
