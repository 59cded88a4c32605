"""Test-only backends for the sweep tests: the oracle, slowed down or made to fail on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from harness.backends.base import ChatModel, ConversationSpec
from harness.backends.oracle import OracleBackend
from harness.types import Message, Reply, Role, Sampling, ToolSchema


@dataclass(frozen=True)
class _Delayed:
    model: ChatModel
    delay_s: float

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        await asyncio.sleep(self.delay_s)
        return await self.model.chat(messages, tools, sampling)


class PacedOracleBackend(OracleBackend):
    """The oracle, with each agent reply `reply_delay_s` late, raising for `fail_variant`'s conversations."""

    def __init__(self, reply_delay_s: float = 0.0, fail_variant: str | None = None) -> None:
        self.reply_delay_s = reply_delay_s
        self.fail_variant = fail_variant

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if conversation.variant == self.fail_variant:
            raise RuntimeError(f"deliberate test failure for variant {conversation.variant}")
        model = super().model_for(role, conversation)
        return _Delayed(model, self.reply_delay_s) if role == "agent" and self.reply_delay_s else model
