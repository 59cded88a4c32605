"""Tiny-model vLLM conversations on τ²'s retail, telecom (dual control: the user's own tool calls) and
banking (knowledge search)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import ChatModel, ConversationSpec, SharedModelBackend
from harness.backends.vllm import VLLMBackend
from harness.episode.types import Role
from harness.job.app import build_job
from harness.job.runner import run_job
from tests import test_vllm_backend as vllm_tests
from tests.helpers import compose_config
from tests.test_vllm_backend import EMAIL_CALL, EngineLoop
from tests.tinymodel import tiny_vllm_overrides

pytestmark = [*vllm_tests.pytestmark, pytest.mark.tau2]
model_dir = vllm_tests.model_dir  # the tiny model and one engine for this module's tests
engine = vllm_tests.engine

STATUS_BAR_CALL = r'<tool_call>\n\{"name": "check_status_bar", "arguments": \{\}\}\n</tool_call>'
KB_SEARCH_CALL = (
    r'<tool_call>\n\{"name": "KB_search", "arguments": \{"query": "lost debit card"\}\}\n</tool_call>'
)


class _UserCallsTools(SharedModelBackend):
    """The running engine; the user's replies held to one call of its own `check_status_bar` tool."""

    name = "vllm"

    def __init__(self, backend: VLLMBackend) -> None:
        self.backend = backend

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if role != "user":
            return self.backend.model_for(role, conversation)
        agent_constraint = self.backend.agent_output_constraint
        self.backend.agent_output_constraint = {"regex": STATUS_BAR_CALL}
        try:  # the agent's constraint slot is how a test holds a reply to a pattern
            return self.backend.model_for("agent", conversation)
        finally:
            self.backend.agent_output_constraint = agent_constraint


def _run(
    engine: tuple[EngineLoop, VLLMBackend],
    model_dir: Path,
    out: Path,
    overrides: list[str],
    user_tools: bool,
    agent_call: str = EMAIL_CALL,
    max_steps: int = 2,
) -> list[dict[str, Any]]:
    loop, backend = engine
    cfg = compose_config(
        [
            *tiny_vllm_overrides(model_dir),
            *overrides,
            "env.tasks=[0]",
            f"env.max_steps={max_steps}",
            "agent.sampling.max_tokens=96",
            "user.sampling.max_tokens=96",
        ]
    )
    job = build_job(cfg, out)
    job.backend = backend
    if user_tools:
        job.user_backend = _UserCallsTools(backend)
    backend.agent_output_constraint = {"regex": agent_call}
    try:
        loop.run(run_job(job))
    finally:
        backend.agent_output_constraint = None
    assert (out / "tau2_results.json").is_file()
    return [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]


def test_tiny_model_conversation_on_tau2_retail(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path
) -> None:
    [record] = _run(engine, model_dir, tmp_path, ["env=tau2_retail"], user_tools=False)
    assert record["termination"] == "step_cap" and record["counts"]["tool_calls"] == 2
    assert [a["name"] for a in record["actions"]] == ["find_user_id_by_email"] * 2
    assert all(m["content"].startswith("Error") for m in record["messages"] if m["role"] == "tool")
    assert "user_actions" not in record


def test_tiny_model_user_calls_its_own_tools_on_tau2_telecom(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path
) -> None:
    [record] = _run(engine, model_dir, tmp_path, ["env=tau2_telecom", "env.split=small"], user_tools=True)
    # a user held to tool calls never speaks: after env.max_steps rounds it is a user error
    assert record["termination"] == "user_error" and not record["scored"], record["error"]
    assert [a["name"] for a in record["user_actions"]] == ["check_status_bar"] * 2
    assert all(not a["observation"].startswith("Error") for a in record["user_actions"])
    assert record["counts"]["user_tool_calls"] == 2
    user_calls = [c for c in record["calls"] if c["role"] == "user"]
    # the opening, then one more call after each round of tool results; the third's calls are not run
    assert len(user_calls) == 3 and all(c["completion_tokens"] > 5 for c in user_calls)
    marked = [m for m in record["messages"] if m.get("requestor") == "user"]
    assert [m["role"] for m in marked] == ["user", "tool", "user", "tool"]


def test_tiny_model_searches_the_knowledge_base_on_tau2_banking(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("TAU2_DATA_DIR", "")) / "tau2" / "domains" / "banking_knowledge"
    if not (folder / "db.json").is_file():
        pytest.skip("τ²-bench's banking_knowledge data is not in TAU2_DATA_DIR")
    pytest.importorskip("rank_bm25", reason="τ²'s BM25 retrieval needs `pip install rank-bm25`")
    # one search: the policy and ten ranked documents fill most of the tiny model's 16k context
    [record] = _run(
        engine,
        model_dir,
        tmp_path,
        ["env=tau2_banking"],
        user_tools=False,
        agent_call=KB_SEARCH_CALL,
        max_steps=1,
    )
    assert record["termination"] == "step_cap" and record["counts"]["tool_calls"] == 1
    assert [a["name"] for a in record["actions"]] == ["KB_search"]
    assert record["actions"][0]["kwargs"] == {"query": "lost debit card"}
    [observation] = [m["content"] for m in record["messages"] if m["role"] == "tool"]
    assert "Lost/Stolen Card" in observation and "ID: doc_" in observation  # BM25's ranked documents
