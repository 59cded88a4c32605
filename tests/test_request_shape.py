"""Request shape from the model preset, against the fake server behaving like a reasoning model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.backends.openai_compat import request_fields
from harness.backends.presets import model_preset
from harness.episode.types import Sampling
from harness.errors import ExitCode, RequestRejected
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS, JOB_FILE
from tests.fake_openai_server import MODEL, REASONING_TOKENS, Step, fake_openai_server
from tests.helpers import ROOT, TOY, compose_config, conversation_domain, read_jsonl

pytest.importorskip("openai", reason="backend=openai needs `pip install -e '.[openai]'`")

KEY_ENV = "TAU_EMOTION_TEST_KEY"
DOMAIN = conversation_domain()
TEXT_THEN_TOOL = [
    Step(content=None, tool_call=("find_user_id_by_email", '{"email": "nobody@example.com"}')),
    Step(content="I could not find you."),
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


def endpoint(prefix: str, url: str) -> list[str]:
    return [f"{prefix}.base_url={url}", f"{prefix}.api_model={MODEL}", f"{prefix}.api_key_env={KEY_ENV}"]


def agent_on(preset: str, url: str) -> list[str]:
    """`backend=openai` with `preset` pointed at the fake server."""
    return [
        "backend=openai",
        f"model={preset}",
        "backend.backoff_s=0.01",
        "backend.max_retries=1",
        *endpoint("model", url),
    ]


def run(tmp_path: Path, overrides: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    cfg = compose_config(
        [
            *DOMAIN.overrides,
            "env.tasks=[0,1,2]",
            "env.max_steps=3",
            "wandb.mode=disabled",
            *overrides,
        ]
    )
    summary = asyncio.run(run_job(build_job(cfg, tmp_path)))
    job = json.loads((tmp_path / JOB_FILE).read_text())
    return summary, read_jsonl(tmp_path / CONVERSATIONS), job


def test_a_reasoning_preset_leaves_out_what_the_model_refuses() -> None:
    preset = model_preset(
        {
            "name": "r",
            "base_url": "http://x/v1",
            "sampling_fields": [],
            "token_limit_field": "max_completion_tokens",
            "reasoning_effort": "low",
            "extra_body": {"service_tier": "flex"},
        }
    )
    fields = request_fields(preset, Sampling(temperature=0.0, top_p=0.9, max_tokens=300, seed=3))
    assert fields == {
        "model": "r",
        "max_completion_tokens": 300,
        "reasoning_effort": "low",
        "extra_body": {"service_tier": "flex"},
    }
    classic = model_preset({"name": "c", "base_url": "http://x/v1"})
    assert request_fields(classic, Sampling(0.0, 1.0, 300, 3)) == {
        "model": "c", "temperature": 0.0, "top_p": 1.0, "seed": 3, "max_tokens": 300,
    }  # fmt: skip


def test_reasoning_model_runs_whole_conversations_as_agent(tmp_path: Path) -> None:
    with fake_openai_server(TEXT_THEN_TOOL, reasoning=True) as server:
        summary, records, job = run(tmp_path, agent_on("gpt-5-mini", server.url))
    assert summary["terminations"] == {"step_cap": 3}
    assert len(server.bodies) == len(server.agent_requests) + server.user_requests
    for body in server.bodies:
        assert "max_tokens" not in body and "temperature" not in body and "top_p" not in body
        assert body["max_completion_tokens"] in (
            25000,
            16000,
        )  # room for reasoning (the presets), not 1024/512
    steps = [call for call in records[0]["calls"] if call["role"] == "agent"]
    assert [call["reasoning_tokens"] for call in steps] == [REASONING_TOKENS] * 3
    assert records[0]["usage"]["agent_reasoning_tokens"] == 3 * REASONING_TOKENS
    assert (
        records[0]["usage"]["user_reasoning_tokens"] == records[0]["counts"]["user_turns"] * REASONING_TOKENS
    )
    shape = job["info"]["request_shape"]
    assert shape["agent"] == {
        "model": MODEL,
        "max_completion_tokens": 25000,
        "not_sent": {"temperature": 0.0, "top_p": 1.0, "seed": "derived per call"},
    }
    assert shape["user"]["not_sent"] == {"temperature": 1.0, "top_p": 1.0, "seed": "derived per call"}


def test_reasoning_model_plays_the_simulated_user(tmp_path: Path) -> None:
    with fake_openai_server([Step()], reasoning=True) as server:
        summary, records, job = run(
            tmp_path,
            [
                "backend=oracle",
                "model=oracle",
                "+user/backend=openai",
                "model@user.backend.model=gpt-5",
                "user.backend.model.reasoning_effort=minimal",
                "env.max_steps=30",
                *endpoint("user.backend.model", server.url),
            ],
        )
    assert server.user_requests == sum(r["counts"]["user_turns"] for r in records) > len(records)
    assert not any(r["termination"] in ("user_error", "infra_error") for r in records), summary
    for body in server.bodies:
        assert body["reasoning_effort"] == "minimal" and body["max_completion_tokens"] == 16000
        assert not {"max_tokens", "temperature", "top_p", "seed"} & body.keys()
    assert all(r["usage"]["user_reasoning_tokens"] > 0 for r in records)
    assert job["info"]["request_shape"]["user"]["reasoning_effort"] == "minimal"
    assert "agent" not in job["info"]["request_shape"]  # the oracle sends no requests


def test_a_wrong_preset_stops_the_job_before_the_second_conversation(tmp_path: Path) -> None:
    with (
        fake_openai_server(TEXT_THEN_TOOL, reasoning=True) as server,
        pytest.raises(RequestRejected) as stopped,
    ):
        run(tmp_path, agent_on("gpt-4o", server.url))
    message = str(stopped.value)
    assert "\n" not in message
    assert "'max_tokens' is not supported" in message
    assert "in the model preset 'gpt-4o' set `token_limit_field: max_completion_tokens`" in message
    assert len(server.bodies) == 1  # the first conversation's first call, though 3 run at once
    assert not (tmp_path / CONVERSATIONS).exists() or not read_jsonl(tmp_path / CONVERSATIONS)


def test_an_unsupported_temperature_names_sampling_fields(tmp_path: Path) -> None:
    with (
        fake_openai_server(TEXT_THEN_TOOL, reasoning=True) as server,
        pytest.raises(RequestRejected, match=r"remove 'temperature' from `sampling_fields`"),
    ):
        run(
            tmp_path,
            [
                *agent_on("gpt-5", server.url),
                "model.sampling_fields=[temperature]",
                "agent.sampling.temperature=0.0",
                "user.sampling.temperature=1.0",
            ],
        )
    # the user's requests (temperature 1) were accepted; the agent's first (temperature 0) was not
    assert any(body.get("tools") for body in server.bodies)


def test_extra_body_arrives_exactly_as_configured(tmp_path: Path) -> None:
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "service_tier": "flex", "top_k": 20}
    with fake_openai_server(TEXT_THEN_TOOL) as server:
        _, _, job = run(
            tmp_path,
            [
                *agent_on("gpt-4.1-mini", server.url),
                "+model.extra_body={chat_template_kwargs:{enable_thinking:false},service_tier:flex,top_k:20}",
            ],
        )
    assert server.bodies
    for body in server.bodies:
        assert {key: body[key] for key in extra} == extra
    shape = job["info"]["request_shape"]["agent"]
    assert shape["extra_body"] == extra and "not_sent" not in shape
    assert (shape["temperature"], shape["top_p"], shape["seed"]) == (0.0, 1.0, "derived per call")
    assert all(isinstance(body["seed"], int) for body in server.bodies)


def test_context_overflow_stays_on_its_conversation(tmp_path: Path) -> None:
    overflow = json.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    )
    with fake_openai_server([Step(status=400, body=overflow)]) as server:
        summary, records, _ = run(tmp_path, agent_on("gpt-4o", server.url))
    assert summary["terminations"] == {"agent_error": 3}
    assert all("maximum context length" in r["error"] for r in records)


def test_the_command_line_stops_with_one_line_and_the_config_exit_code(tmp_path: Path) -> None:
    with fake_openai_server(TEXT_THEN_TOOL, reasoning=True) as server:
        command = [
            sys.executable, "-m", "harness", *agent_on("gpt-4.1", server.url), *TOY,
            "env.task_range=[0,5]", "wandb.mode=disabled", f"hydra.run.dir={tmp_path}",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == ExitCode.CONFIG
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "in the model preset 'gpt-4.1' set `token_limit_field" in line
    assert len(server.bodies) == 1
