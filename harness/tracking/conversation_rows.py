"""What a tracker shows of one conversation record: its metrics row and a readable transcript."""

from __future__ import annotations

import json
from typing import Any

from harness.cost import conversation_cost
from harness.metrics import is_success

TOOL_OUTPUT_SHOWN = 600
"""Characters of a tool result shown in the rendered transcript; the raw JSON keeps all of it."""


def conversation_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """The per-conversation numbers logged as one history row (prefix `conversation/`)."""
    counts, usage = record["counts"], record["usage"]
    cost = {f"{key.removesuffix('usd')}cost_usd": value for key, value in conversation_cost(record).items()}
    return {
        "task_id": record["task_id"],
        "trial": record["trial"],
        "reward": record["reward"],
        "success": int(record["scored"] and is_success(record["reward"])),
        "scored": int(record["scored"]),
        "termination": record["termination"],
        "transfer_to_human": int(record["termination"] == "transfer_to_human"),
        "turns": counts["user_turns"],
        "steps": counts["steps"],
        "tool_calls": counts["tool_calls"],
        "tool_errors": counts["tool_errors"],
        "malformed_tool_calls": counts["malformed_tool_calls"],
        "agent_tokens": usage["agent_prompt_tokens"] + usage["agent_completion_tokens"],
        "user_tokens": usage["user_prompt_tokens"] + usage["user_completion_tokens"],
        "agent_reasoning_tokens": usage.get("agent_reasoning_tokens", 0),
        "user_reasoning_tokens": usage.get("user_reasoning_tokens", 0),
        **{key: value for key, value in cost.items() if value is not None},  # absent where unpriced
        "agent_latency_s": usage["agent_latency_s"],
        "user_latency_s": usage["user_latency_s"],
        "latency_s": record["duration_s"],
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
        self.conversations += 1
        self.tool_calls += metrics["tool_calls"]
        self.tool_errors += metrics["tool_errors"]
        self.transfers += metrics["transfer_to_human"]
        if metrics["scored"]:
            self.scored += 1
            self.reward += metrics["reward"]
            self.successes += metrics["success"]
        else:
            self.unscored_errors += 1
        return self.values()

    def values(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "average_reward": self.reward / self.scored if self.scored else None,
            "success_rate": self.successes / self.scored if self.scored else None,
            "transfer_rate": self.transfers / self.conversations,
            "tool_error_rate": self.tool_errors / self.tool_calls if self.tool_calls else 0.0,
            "unscored_errors": self.unscored_errors,
        }


def render_transcript(messages: list[dict[str, Any]]) -> str:
    """The conversation as a person reads it: who said what, which tool was called with what."""
    lines: list[str] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            lines.append(f"[system prompt: {len(message.get('content') or '')} characters]")
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
            lines.append(f"TOOL {message.get('name', '')}: {content}")
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


def transcript_row(record: dict[str, Any]) -> list[Any]:
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
