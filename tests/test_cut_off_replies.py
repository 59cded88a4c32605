"""Replies cut off at the token limit: recorded with their finish_reason, never sent on empty."""

from __future__ import annotations

from pathlib import Path

from harness.store import CONVERSATIONS
from tests.helpers import read_jsonl, run_toy_job

CUT_OFF_THINKING = "{text: '', finish_reason: length, reasoning_tokens: 900}"
USER_STOPS = "backend.user=[{text: 'I need help.'},{text: '###STOP###'}]"


def test_an_agent_cut_off_while_thinking_ends_as_agent_cut_off_scored_and_never_reaches_the_user(
    tmp_path: Path,
) -> None:
    summary = run_toy_job(
        tmp_path, ["backend=scripted", f"backend.agent=[{CUT_OFF_THINKING}]", USER_STOPS, "env.tasks=[0]"]
    )
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["termination"] == "agent_cut_off" and record["scored"] and record["reward"] == 0.0
    assert "cut off at max_tokens=1024 after 900 reasoning tokens" in record["error"]
    [agent_call] = [c for c in record["calls"] if c["role"] == "agent"]
    assert (agent_call["finish_reason"], agent_call["reasoning_tokens"]) == ("length", 900)
    assert record["counts"]["empty_replies"] == 1 and record["counts"]["agent_replies"] == 0
    assert not any(m["role"] == "assistant" for m in record["messages"])  # nothing sent on
    assert record["counts"]["user_turns"] == 1  # the user never answered an empty reply
    assert summary["terminations"] == {"agent_cut_off": 1} and summary["scored"] == 1


def test_a_user_cut_off_while_thinking_ends_as_user_cut_off_unscored(tmp_path: Path) -> None:
    summary = run_toy_job(
        tmp_path,
        [
            "backend=scripted",
            "backend.agent=[{text: 'How can I help?'}]",
            f"backend.user=[{{text: 'I need help.'}},{CUT_OFF_THINKING}]",
            "env.tasks=[0]",
        ],
    )
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["termination"] == "user_cut_off" and not record["scored"]
    assert "user's model was cut off at max_tokens=512 after 900 reasoning tokens" in record["error"]
    user_calls = [c for c in record["calls"] if c["role"] == "user"]
    assert [c["finish_reason"] for c in user_calls] == ["stop", "length"]
    assert summary["user_errors"] == 1 and summary["state"] == "complete"


def test_a_text_reply_cut_off_is_sent_on_and_counted_as_truncated(tmp_path: Path) -> None:
    run_toy_job(
        tmp_path,
        [
            "backend=scripted",
            "backend.agent=[{text: 'Your order is', finish_reason: length}]",
            USER_STOPS,
            "env.tasks=[0]",
        ],
    )
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["termination"] == "user_stop"
    assert record["counts"]["truncated_replies"] == 1 and record["counts"]["empty_replies"] == 0
    calls = record["calls"]
    assert [c["finish_reason"] for c in calls if c["role"] == "agent"] == ["length"]
    assert [c["finish_reason"] for c in calls if c["role"] == "user"] == ["stop", "stop"]


def test_oracle_replies_record_their_finish_reason(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["backend=oracle", "env.tasks=[0]"])
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    reasons = {c["finish_reason"] for c in record["calls"]}
    assert reasons <= {"stop", "tool_calls"} and "stop" in reasons
