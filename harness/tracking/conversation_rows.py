"""What a tracker shows of one conversation record: its metrics row and a readable transcript."""

from __future__ import annotations

import json
from typing import Any

from harness.episode.record import ConversationRecord
from harness.job.cost import conversation_cost
from harness.job.metrics import is_success, user_texts, words_per_turn
from harness.tracking.keys import Conversation, Running

TOOL_OUTPUT_SHOWN = 600
"""Characters of a tool result shown in the rendered transcript; the raw JSON keeps all of it."""


def conversation_metrics(record: ConversationRecord) -> dict[str, Any]:
    """The per-conversation numbers logged as one history row (prefix `conversation/`)."""
    counts, usage = record["counts"], record["usage"]
    c = Conversation
    cost = {f"{key.removesuffix('usd')}cost_usd": value for key, value in conversation_cost(record).items()}
    return {
        c.TASK_ID: record["task_id"],
        c.TRIAL: record["trial"],
        c.REWARD: record["reward"],
        c.SUCCESS: int(record["scored"] and is_success(record["reward"])),
        c.SCORED: int(record["scored"]),
        c.TERMINATION: record["termination"],
        c.TRANSFER_TO_HUMAN: int(record["termination"] == "transfer_to_human"),
        c.TURNS: counts["user_turns"],
        c.STEPS: counts["steps"],
        c.TOOL_CALLS: counts["tool_calls"],
        c.TOOL_ERRORS: counts["tool_errors"],
        c.MALFORMED_TOOL_CALLS: counts["malformed_tool_calls"],
        c.USER_WORDS_PER_TURN: words_per_turn(user_texts(record.get("messages") or [])),
        c.AGENT_TOKENS: usage["agent_prompt_tokens"] + usage["agent_completion_tokens"],
        c.USER_TOKENS: usage["user_prompt_tokens"] + usage["user_completion_tokens"],
        c.AGENT_REASONING_TOKENS: usage.get("agent_reasoning_tokens", 0),
        c.USER_REASONING_TOKENS: usage.get("user_reasoning_tokens", 0),
        **{
            Conversation(key): value for key, value in cost.items() if value is not None
        },  # absent where unpriced
        c.AGENT_LATENCY_S: usage["agent_latency_s"],
        c.USER_LATENCY_S: usage["user_latency_s"],
        c.LATENCY_S: record["duration_s"],
    }


class RunningAverages:
    """Means over the conversations logged so far, across resumed segments of one run."""

    def __init__(self) -> None:
        self.conversations = 0
        self.scored = 0
        self.reward = 0.0
        self.successes = 0
        self.transfers = 0
        self.tool_errors = 0
        self.tool_calls = 0
        self.unscored_errors = 0

    def add(self, metrics: dict[str, Any]) -> dict[str, Any]:
        c = Conversation
        self.conversations += 1
        self.tool_calls += metrics[c.TOOL_CALLS]
        self.tool_errors += metrics[c.TOOL_ERRORS]
        self.transfers += metrics[c.TRANSFER_TO_HUMAN]
        if metrics[c.SCORED]:
            self.scored += 1
            self.reward += metrics[c.REWARD]
            self.successes += metrics[c.SUCCESS]
        else:
            self.unscored_errors += 1
        return self.values()

    def values(self) -> dict[str, Any]:
        r = Running
        return {
            r.CONVERSATIONS: self.conversations,
            r.AVERAGE_REWARD: self.reward / self.scored if self.scored else None,
            r.SUCCESS_RATE: self.successes / self.scored if self.scored else None,
            r.TRANSFER_RATE: self.transfers / self.conversations,
            r.TOOL_ERROR_RATE: self.tool_errors / self.tool_calls if self.tool_calls else 0.0,
            r.UNSCORED_ERRORS: self.unscored_errors,
        }


def render_transcript(messages: list[dict[str, Any]]) -> str:
    """The conversation as a person reads it: who said what, which tool was called with what."""
    lines: list[str] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            lines.append(f"[system prompt: {len(message.get('content') or '')} characters]")
        elif role == "user" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call["function"]
                lines.append(f"USER -> {function['name']}({function['arguments']})")
        elif role == "user":
            lines.append(f"USER: {message.get('content') or ''}")
        elif role == "assistant":
            if message.get("content"):
                lines.append(f"AGENT: {message['content']}")
            for call in message.get("tool_calls") or []:
                function = call["function"]
                lines.append(f"AGENT -> {function['name']}({function['arguments']})")
        elif role == "tool":
            content = str(message.get("content") or "")
            if len(content) > TOOL_OUTPUT_SHOWN:
                content = f"{content[:TOOL_OUTPUT_SHOWN]} … [{len(content)} characters]"
            owner = "USER TOOL" if message.get("requestor") == "user" else "TOOL"
            lines.append(f"{owner} {message.get('name', '')}: {content}")
        else:
            lines.append(f"{role.upper()}: {message.get('content') or ''}")
    return "\n\n".join(lines)


TRANSCRIPT_COLUMNS = [
    "task_id",
    "trial",
    "variant",
    "reward",
    "termination",
    "turns",
    "tool_calls",
    "transcript",
    "messages_json",
]


def transcript_row(record: ConversationRecord) -> list[Any]:
    return [
        record["task_id"],
        record["trial"],
        record["variant"],
        record["reward"],
        record["termination"],
        record["counts"]["user_turns"],
        record["counts"]["tool_calls"],
        render_transcript(record["messages"]),
        json.dumps(record["messages"], ensure_ascii=False),
    ]
