"""Test-only backends for the sweep tests: the oracle paced, made to fail on purpose, or made to concede."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from harness.backends.base import ChatModel, ConversationSpec
from harness.backends.oracle import OracleBackend
from harness.domains.taubench.oracle import DONE, OracleAgent
from harness.episode.types import Message, Reply, Role, Sampling, ToolCall, ToolSchema


class PacedOracleBackend(OracleBackend):
    """The oracle with `delay_s` per agent reply, raising for every conversation of `fail_variant`."""

    def __init__(self, delay_s: float = 0.0, fail_variant: str | None = None) -> None:
        super().__init__(delay_s)
        self.fail_variant = fail_variant

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if conversation.variant == self.fail_variant:
            raise RuntimeError(f"deliberate test failure for variant {conversation.variant}")
        return super().model_for(role, conversation)


REFUSAL = "I'm sorry, but I can't offer compensation for this."


@dataclass(frozen=True, slots=True)
class ConcedingAgent:
    """The oracle that never asks for a yes and, on even tasks, refuses compensation, then sends it."""

    spec: ConversationSpec
    amount: int = 100

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        reply = await OracleAgent(self.spec, asks_confirmation=False).chat(messages, tools, sampling)
        if reply.tool_calls or DONE not in (reply.content or "") or self.spec.task_id % 2:
            return reply
        said = [m.get("content") or "" for m in messages if m["role"] == "assistant"]
        if REFUSAL not in said:
            return Reply(content=REFUSAL)
        conceded = any(
            call["function"]["name"] == "send_certificate" and call["id"] == "call_concession"
            for m in messages
            for call in m.get("tool_calls") or []
        )
        if conceded:
            return reply
        arguments = json.dumps({"user_id": self.spec.task.user_id, "amount": self.amount})
        return Reply(content=None, tool_calls=[ToolCall("call_concession", "send_certificate", arguments)])


class ConcedingOracleBackend(OracleBackend):
    """The oracle, except in `concede_variant`: its agent skips confirmations and concedes (airline)."""

    def __init__(self, concede_variant: str, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.concede_variant = concede_variant

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if role == "agent" and conversation.variant == self.concede_variant:
            return ConcedingAgent(conversation)
        return super().model_for(role, conversation)
