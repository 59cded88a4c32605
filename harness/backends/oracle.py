"""The oracle: a plumbing check of the loop and τ-bench's reward, not a model result.

Its agent replays the task's ground-truth actions and states the task's expected outputs;
its user opens with the variant's scripted line and stops once the agent says it is done.
With real τ-bench every task must score 1.0; anything less is a harness bug. On τ² tasks it
also asks the user to run the user's ground-truth actions (`harness.domains.tau2.oracle`), and
as the judge it grades every NL assertion met.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from harness.backends.base import ChatModel, ConversationSpec, SharedModelBackend
from harness.backends.scripted import ScriptedJudge
from harness.episode.types import (
    RESPOND_ACTION_NAME,
    STOP_TOKEN,
    Message,
    Reply,
    Role,
    Sampling,
    ToolCall,
    ToolSchema,
)

DONE = "That completes your request."
ACKNOWLEDGE = "Okay, please go ahead."
TERMINATING = frozenset({"transfer_to_human_agents"})


@dataclass(frozen=True, slots=True)
class OracleAgent:
    spec: ConversationSpec
    delay_s: float = 0.0

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
                return Reply(content=_statement(outputs))
            arguments = json.dumps(dict(action.kwargs))
            return Reply(content=None, tool_calls=[ToolCall(f"call_{done}", action.name, arguments)])
        return Reply(content=f"{_statement(outputs)} {DONE}".strip())


def _statement(outputs: list[str]) -> str:
    return f"Here is what you asked for: {'; '.join(outputs)}." if outputs else ""


@dataclass(frozen=True, slots=True)
class ScriptedUser:
    spec: ConversationSpec

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        # The simulator's view has the roles swapped: the agent speaks as "user".
        agent_turns = [m for m in messages if m["role"] == "user"]
        if len(agent_turns) <= 1:
            return Reply(content=self.spec.scripted_opening)
        return Reply(content=STOP_TOKEN if DONE in (agent_turns[-1]["content"] or "") else ACKNOWLEDGE)


class OracleBackend(SharedModelBackend):
    name = "oracle"
    plumbing_check = True
    RUNTIME_KEYS = frozenset({"delay_s"})
    """The simulated latency changes how fast it answers, not what."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # simulated latency per agent call, e.g. to interrupt a job mid-run

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if role == "judge":
            return ScriptedJudge(conversation)
        if hasattr(conversation.task, "evaluation_criteria"):  # a τ² task
            from harness.domains.tau2.oracle import Tau2OracleAgent, Tau2OracleUser

            return (
                Tau2OracleAgent(conversation, self.delay_s)
                if role == "agent"
                else Tau2OracleUser(conversation)
            )
        return OracleAgent(conversation, self.delay_s) if role == "agent" else ScriptedUser(conversation)
