"""`backend=openai` against a scripted local HTTP server: retries, backoff, pass-through, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from harness.backends.openai_compat import OpenAIBackend
from harness.episode.types import Sampling
from harness.errors import BackendUnavailable, ConfigError, HarnessError
from harness.job.app import build_job
from harness.job.runner import run_job
from tests.fake_openai_server import MODEL, Step, fake_openai_server
from tests.helpers import compose_config, conversation_domain

pytest.importorskip("openai", reason="backend=openai needs `pip install -e '.[openai]'`")

KEY_ENV = "TAU_EMOTION_TEST_KEY"
SECRET = "sk-test-secret-never-recorded"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_user_details",
            "description": "Get the details of a user.",
            "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}},
        },
    }
]
MESSAGES = [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"}]


DOMAIN = conversation_domain()  # τ-bench retail where it is installed, else the toy shop


def model_preset(url: str, key_env: str | None = KEY_ENV) -> dict[str, Any]:
    return {"name": "fake", "api_model": MODEL, "base_url": url, "api_key_env": key_env, "gpus": 0}


def backend_for(url: str, **settings: Any) -> OpenAIBackend:
    defaults = {
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_s": 0.05,
        "backoff_max_s": 0.2,
        "rate_limit_backoff_s": 0.1,
    }
    return OpenAIBackend(model_preset(url), **{**defaults, **settings})


async def one_chat(backend: OpenAIBackend) -> Any:
    async with backend:
        return await backend.complete(MESSAGES, TOOLS, Sampling(seed=7))


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def test_retries_429_500_and_garbage_then_answers() -> None:
    script = [Step(status=429), Step(status=500), Step(body="this is not json"), Step(content="Done.")]
    with fake_openai_server(script) as server:
        reply = asyncio.run(one_chat(backend_for(server.url)))
    assert reply.content == "Done."
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens) == (100, 7, 64)
    assert len(server.agent_requests) == 4
    gaps = [b - a for a, b in zip(server.agent_times, server.agent_times[1:], strict=False)]
    # full jitter waits at least half the exponential ceiling: 0.025, 0.05, 0.1 s
    assert all(gap >= 0.05 * 2**i / 2 for i, gap in enumerate(gaps)), gaps
    assert server.agent_requests[0]["seed"] == 7
    headers = {key.lower(): value for key, value in server.headers[0].items()}
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_gives_up_after_retries_with_backend_unavailable() -> None:
    with (
        fake_openai_server([Step(status=503)]) as server,
        pytest.raises(BackendUnavailable, match="after 3 attempts"),
    ):
        asyncio.run(one_chat(backend_for(server.url, max_retries=2)))
    assert len(server.agent_requests) == 3


def test_timeouts_are_retried_then_reported() -> None:
    with (
        fake_openai_server([Step(delay_s=1.5)]) as server,
        pytest.raises(BackendUnavailable, match="Timeout"),
    ):
        asyncio.run(one_chat(backend_for(server.url, timeout_s=0.2, max_retries=1)))
    assert len(server.agent_requests) == 2


def test_client_errors_are_not_retried() -> None:
    with fake_openai_server([Step(status=403)]) as server, pytest.raises(BackendUnavailable, match="refused"):
        asyncio.run(one_chat(backend_for(server.url)))
    assert len(server.agent_requests) == 1


def test_malformed_tool_call_json_is_passed_through() -> None:
    raw = '{"user_id": "abc",'
    with fake_openai_server([Step(content=None, tool_call=("get_user_details", raw))]) as server:
        reply = asyncio.run(one_chat(backend_for(server.url)))
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_user_details", raw)]
    assert reply.parse_error is None


def test_concurrency_is_bounded() -> None:
    async def many(backend: OpenAIBackend) -> None:
        async with backend:
            await asyncio.gather(*(backend.complete(MESSAGES, TOOLS, Sampling()) for _ in range(6)))

    with fake_openai_server([Step(delay_s=0.2)]) as server:
        asyncio.run(many(backend_for(server.url, max_concurrency=2)))
    assert len(server.agent_requests) == 6
    assert server.most_in_flight == 2


def test_missing_api_key_variable_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=f"environment variable {KEY_ENV}, which is not set"):
        backend_for("http://127.0.0.1:9/v1")


def test_unreachable_endpoint_fails_on_start() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HarnessError, match="cannot reach the endpoint"):
        asyncio.run(one_chat(backend_for(f"http://127.0.0.1:{port}/v1")))


def test_unknown_model_fails_on_start() -> None:
    with fake_openai_server([Step()]) as server:
        backend = OpenAIBackend({**model_preset(server.url), "api_model": "not-served"})
        with pytest.raises(ConfigError, match="does not serve 'not-served'"):
            asyncio.run(one_chat(backend))


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backend = OpenAIBackend(model_preset("http://x/v1"), backoff_s=1.0, backoff_max_s=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [backend.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def test_retry_after_is_honoured() -> None:
    script = [Step(status=429, retry_after="0.8"), Step(status=503, retry_after="0"), Step(content="Done.")]
    with fake_openai_server(script) as server:
        reply = asyncio.run(one_chat(backend_for(server.url)))
    assert reply.content == "Done."
    first, second = (b - a for a, b in zip(server.agent_times, server.agent_times[1:], strict=False))
    assert first >= 0.8  # the backoff alone would wait at most 0.1 s
    assert second < 0.5


def test_rate_limits_back_off_longer_than_server_errors() -> None:
    backend = OpenAIBackend(model_preset("http://x/v1"), backoff_s=1.0, rate_limit_backoff_s=10.0)
    assert all(5.0 <= backend.backoff(1, rate_limited=True) <= 10.0 for _ in range(50))
    assert all(0.5 <= backend.backoff(1) <= 1.0 for _ in range(50))
    assert all(backend.backoff(4, rate_limited=True) <= 60.0 for _ in range(50))


def test_retry_after_header_forms() -> None:
    from email.utils import formatdate

    from harness.backends.openai_compat import retry_after

    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert 25 <= (retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)}) or 0) <= 31
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_a_reasoning_model_cut_off_records_finish_reason_and_reasoning_tokens() -> None:
    script = [Step(content=None, finish_reason="length", reasoning_tokens=1024)]
    with fake_openai_server(script) as server:
        reply = asyncio.run(one_chat(backend_for(server.url)))
    assert (reply.content, reply.finish_reason, reply.reasoning_tokens) == (None, "length", 1024)
    assert reply.completion_tokens == 1031


def run_harness(
    url: str, tmp_path: Path, extra: list[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cfg = compose_config(
        [
            "backend=openai",
            "model=gpt-4o",
            f"model.base_url={url}",
            f"model.api_model={MODEL}",
            f"model.api_key_env={KEY_ENV}",
            "backend.backoff_s=0.01",
            "backend.max_retries=2",
            *DOMAIN.overrides,
            "env.tasks=[0,1]",
            "env.max_steps=3",
            *(extra or []),
        ]
    )
    summary = asyncio.run(run_job(build_job(cfg, tmp_path)))
    records = [json.loads(line) for line in (tmp_path / "conversations.jsonl").read_text().splitlines()]
    return summary, records


def test_harness_records_infra_error_when_the_endpoint_keeps_failing(tmp_path: Path) -> None:
    with fake_openai_server([Step(status=500)]) as server:
        summary, records = run_harness(server.url, tmp_path)
    assert summary["terminations"] == {"infra_error": 2}
    assert all("failed after 3 attempts" in r["error"] and not r["scored"] for r in records)
    assert len(server.agent_requests) == 2 * 3
    for path in tmp_path.iterdir():
        assert SECRET not in path.read_text()


def test_harness_records_malformed_tool_call_as_agent_error(tmp_path: Path) -> None:
    raw = '{"user_id": '
    with fake_openai_server([Step(content=None, tool_call=("get_user_details", raw))]) as server:
        summary, records = run_harness(server.url, tmp_path)
    assert summary["terminations"] == {"agent_error": 2}
    for record in records:
        assert record["counts"]["malformed_tool_calls"] == 1
        assert "malformed tool call arguments" in record["error"]
        assert record["messages"][-1]["tool_calls"][0]["function"]["arguments"] == raw
        assert record["usage"]["agent_prompt_tokens"] == 100
        assert record["usage"]["agent_cached_tokens"] == 64
    assert server.user_requests == 2


def test_harness_ends_a_reply_cut_off_while_thinking_as_agent_cut_off(tmp_path: Path) -> None:
    with fake_openai_server([Step(content=None, finish_reason="length", reasoning_tokens=1024)]) as server:
        summary, records = run_harness(server.url, tmp_path)
    assert summary["terminations"] == {"agent_cut_off": 2}
    for record in records:
        assert record["scored"] and "after 1024 reasoning tokens" in record["error"]
        [agent_call] = [c for c in record["calls"] if c["role"] == "agent"]
        assert (agent_call["finish_reason"], agent_call["reasoning_tokens"]) == ("length", 1024)
        assert record["usage"]["agent_reasoning_tokens"] == 1024
    assert server.user_requests == 2  # the opening only: the empty reply never reached the user


def test_harness_counts_truncated_and_unparsed_tool_calls_as_on_vllm(tmp_path: Path) -> None:
    cut = Step(content=None, tool_call=("get_user_details", '{"user_id": "ab'), finish_reason="length")
    with fake_openai_server([cut]) as server:
        _, records = run_harness(server.url, tmp_path / "cut")
    for record in records:
        assert record["counts"]["truncated_tool_calls"] == 1 and record["counts"]["malformed_tool_calls"] == 0
        assert record["termination"] == "agent_error"
    text_call = Step(content='<tool_call>{"name": "get_user_details", "arguments": {"user_id": "a"}}')
    with fake_openai_server([text_call, Step(content="Sorry.")]) as server:
        _, records = run_harness(server.url, tmp_path / "text", ["concurrency=1"])
    errors = [c["parse_error"] for r in records for c in r["calls"] if c.get("parse_error")]
    assert len(errors) == 1 and errors[0].startswith("unparseable tool call (returned as text)")
    assert sum(r["counts"]["malformed_tool_calls"] for r in records) == 1


def test_harness_runs_tool_calls_and_text_through_the_endpoint(tmp_path: Path) -> None:
    script = [
        Step(content=None, tool_call=("find_user_id_by_email", '{"email": "nobody@example.com"}')),
        Step(content="I could not find you."),
    ]
    with fake_openai_server(script) as server:
        summary, records = run_harness(server.url, tmp_path, ["concurrency=1"])
    assert summary["terminations"] == {"step_cap": 2}
    first = records[0]
    assert first["actions"][0] == {"name": "find_user_id_by_email", "kwargs": {"email": "nobody@example.com"}}
    assert first["messages"][3]["role"] == "tool" and "not found" in first["messages"][3]["content"]
    assert first["counts"]["tool_calls"] == 1 and first["counts"]["agent_replies"] == 2
    assert server.agent_requests[0]["tools"][0]["type"] == "function"


def test_served_model_and_fingerprint_are_recorded_and_compared_across_arms(tmp_path: Path) -> None:
    from harness.report.build import Settings, build_report

    sweep = tmp_path / "sweep"
    with fake_openai_server([Step(content="How can I help?")]) as server:
        run_harness(server.url, sweep / "neutral", ["variant=neutral", "env.max_steps=1"])
        server.served_model, server.system_fingerprint = "fake-model-2026-06-01", "fp_fake0002"
        _, records = run_harness(server.url, sweep / "anger", ["variant=anger", "env.max_steps=1"])
    for record in records:
        for call in record["calls"]:
            assert (call["served_model"], call["system_fingerprint"]) == (
                "fake-model-2026-06-01",
                "fp_fake0002",
            )
    table = build_report(sweep, settings=Settings(resamples=20, model=False)).tables["independence"]
    [row] = table[table["contrast"].str.startswith("anger")].to_dict("records")
    assert row["served_models"] == "fake-model-2026-01-15,fake-model-2026-06-01"
    assert row["system_fingerprints"] == 2
    assert (
        "different model versions (baseline fake-model-2026-01-15; variant fake-model-2026-06-01)"
        in row["warning"]
    )
    assert "share no system_fingerprint" in row["warning"]
