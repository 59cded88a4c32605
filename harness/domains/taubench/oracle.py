"""The oracle on τ-bench tasks: a plumbing check of the loop and τ-bench's reward, not a model result.

Its agent replays the task's ground-truth actions and states the task's expected outputs, asking
the user's yes before a write the policy wants confirmed (`ToolRoles.confirm`); its user opens with
the variant's scripted line and stops once the agent says it is done. With real τ-bench every task
must score 1.0; anything less is a harness bug. `backend=oracle` asks the domain for these players
(`Domain.oracle`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from harness.backends.base import ConversationSpec
from harness.episode.types import (
    RESPOND_ACTION_NAME,
    STOP_TOKEN,
    Message,
    Reply,
    Sampling,
    ToolCall,
    ToolSchema,
)

DONE = "That completes your request."
ACKNOWLEDGE = "Okay, please go ahead."
TERMINATING = frozenset({"transfer_to_human_agents"})
CONFIRM = "I am about to run {name} with {arguments}. Shall I proceed?"


def confirmation_request(
    confirm: frozenset[str], messages: Sequence[Message], name: str, arguments: str
) -> Reply | None:
    """The oracle's request for a yes before `name` (one of the writes in `confirm`, the domain's
    `ToolRoles.confirm`), or None when the user's last word was that yes."""
    if name not in confirm:
        return None
    said = [m.get("content") for m in messages if m["role"] == "user" and m.get("requestor") != "user"]
    if said and said[-1] == ACKNOWLEDGE:
        return None
    return Reply(content=CONFIRM.format(name=name, arguments=arguments))


@dataclass(frozen=True, slots=True)
class OracleAgent:
    spec: ConversationSpec
    confirm: frozenset[str] = frozenset()
    """The writes the policy wants the user's yes for (`ToolRoles.confirm`): the oracle asks first."""
    delay_s: float = 0.0
    asks_confirmation: bool = True

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        actions = [a for a in self.spec.task.actions if a.name != RESPOND_ACTION_NAME]
        done = sum(1 for m in messages if m["role"] == "tool")
        outputs = list(self.spec.task.outputs)
        stated = any(
            m["role"] == "assistant" and m.get("content") and all(o in m["content"] for o in outputs)
            for m in messages
        )
        if done < len(actions):
            action = actions[done]
            if action.name in TERMINATING and outputs and not stated:
                return Reply(content=statement(outputs), finish_reason="stop")
            arguments = json.dumps(dict(action.kwargs))
            ask = confirmation_request(self.confirm, messages, action.name, arguments)
            if ask is not None and self.asks_confirmation:
                return ask
            return Reply(
                content=None,
                tool_calls=[ToolCall(f"call_{done}", action.name, arguments)],
                finish_reason="tool_calls",
            )
        return Reply(content=f"{statement(outputs)} {DONE}".strip(), finish_reason="stop")


def statement(outputs: list[str]) -> str:
    """The oracle's sentence stating what the task says must be told to the user ("" for nothing)."""
    return f"Here is what you asked for: {'; '.join(outputs)}." if outputs else ""


def scripted_answer(spec: ConversationSpec, messages: Sequence[Message]) -> str:
    """The oracle user's words in its own view of the chat, where the agent speaks as "user": the
    variant's scripted opening to the greeting, then a yes until the agent says it is done, then stop."""
    agent_turns = [m for m in messages if m["role"] == "user"]
    if len(agent_turns) <= 1:
        return spec.scripted_opening
    return STOP_TOKEN if DONE in (agent_turns[-1].get("content") or "") else ACKNOWLEDGE


@dataclass(frozen=True, slots=True)
class ScriptedUser:
    spec: ConversationSpec

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        return Reply(content=scripted_answer(self.spec, messages), finish_reason="stop")
