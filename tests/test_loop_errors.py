"""What the loop records when the agent, the user or the backend misbehave (scripted backend)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness.backends.scripted import ScriptedBackend
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import TOY, compose_config, read_jsonl, run_toy_job

STOP_AFTER_ONE = "backend.user=[{text: 'I need help.'},{text: '###STOP###'}]"


def _run(tmp_path: Path, agent_script: str, *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = run_toy_job(
        tmp_path,
        ["backend=scripted", f"backend.agent={agent_script}", STOP_AFTER_ONE, "env.tasks=[0]", *extra],
    )
    return summary, read_jsonl(tmp_path / CONVERSATIONS)


def test_unknown_tool_and_bad_arguments_become_observations_and_the_conversation_goes_on(
    tmp_path: Path,
) -> None:
    script = (
        "[{tool: fly_to_moon, arguments: {}},{tool: get_order_details, arguments: {oid: 1}},{text: done}]"
    )
    _, [record] = _run(tmp_path, script)
    tool_messages = [m["content"] for m in record["messages"] if m["role"] == "tool"]
    assert tool_messages[0] == "Unknown action fly_to_moon"
    assert tool_messages[1].startswith("Error: ") and "oid" in tool_messages[1]
    assert record["termination"] == "user_stop" and record["counts"]["tool_errors"] == 2
    assert record["reward"] == 0.0 and record["scored"]  # the database was not changed as required


def test_malformed_tool_call_json_is_an_agent_error_scored_zero(tmp_path: Path) -> None:
    summary, [record] = _run(tmp_path, "[{tool: get_order_details, arguments: '{\"order_id\": '}]")
    assert record["termination"] == "agent_error"
    assert "malformed tool call arguments" in record["error"]
    assert record["scored"] and record["reward"] == 0.0
    assert summary["average_reward"] == 0.0 and summary["scored"] == 1


def test_step_cap_scores_zero(tmp_path: Path) -> None:
    _, [record] = _run(
        tmp_path, "[{tool: get_order_details, arguments: {order_id: '#A1'}}]", "env.max_steps=4"
    )
    assert record["termination"] == "step_cap" and record["reward"] == 0.0
    assert record["counts"]["steps"] == 4 and record["counts"]["tool_calls"] == 4


def test_infrastructure_errors_are_left_out_of_metrics_and_redone_on_rerun(tmp_path: Path) -> None:
    summary, [record] = _run(tmp_path, "[{fail: unavailable}]")
    assert record["termination"] == "infra_error" and not record["scored"]
    assert summary["scored"] == 0 and summary["average_reward"] is None and summary["unscored_errors"] == 1
    # the same job again, now that the backend answers: the failed conversation is redone
    job = build_job(
        compose_config(
            [*TOY, "backend=scripted", "backend.agent=[{fail: unavailable}]", STOP_AFTER_ONE, "env.tasks=[0]"]
        ),
        tmp_path,
    )
    job.backend = ScriptedBackend(agent=[{"text": "hello"}], user=[{"text": "hi"}, {"text": "###STOP###"}])
    summary = asyncio.run(run_job(job))
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert [r["termination"] for r in records] == ["infra_error", "user_stop"]
    assert summary["conversations"] == 1 and summary["scored"] == 1


def test_an_exception_in_one_conversation_does_not_stop_the_others(tmp_path: Path) -> None:
    summary = run_toy_job(
        tmp_path, ["backend=scripted", "backend.agent=[{fail: crash}]", STOP_AFTER_ONE, "env.trials=2"]
    )
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert len(records) == 10 and {r["termination"] for r in records} == {"harness_error"}
    assert "scripted backend: crash" in records[0]["error"]
    assert summary["unscored_errors"] == 10


def test_an_empty_user_message_is_a_user_simulator_error(tmp_path: Path) -> None:
    summary = run_toy_job(
        tmp_path,
        ["backend=scripted", "backend.agent=[{text: hi}]", "backend.user=[{text: ''}]", "env.tasks=[0]"],
    )
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["termination"] == "user_error" and not record["scored"]
    assert summary["unscored_errors"] == 1
