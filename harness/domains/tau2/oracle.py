"""The oracle on τ² tasks: replays the ground-truth actions, the agent's and the user's.

The agent runs its own ground-truth actions in order (asking the user's yes first where the
policy wants one); when the next one is the user's, it asks
the user to run it (`REQUEST` + the call as JSON) and the oracle user does exactly that on its
own tools, then says `USER_DONE`. Last, the agent states everything the task says must be
communicated and that it is done; the user then stops.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import ConversationSpec
from harness.domains.taubench.oracle import DONE, confirmation_request, scripted_answer, statement
from harness.episode.types import Message, Reply, Sampling, ToolCall, ToolSchema

REQUEST = "Please run this on your device: "
USER_DONE = "I did that on my device."


def _ground_truth(task: Any) -> tuple[list[Any], list[str]]:
    criteria = task.evaluation_criteria
    if criteria is None:
        return [], []
    return list(criteria.actions or []), list(criteria.communicate_info or [])


@dataclass(frozen=True, slots=True)
class Tau2OracleAgent:
    spec: ConversationSpec
    confirm: frozenset[str] = frozenset()
    """The writes the policy wants the user's yes for (`ToolRoles.confirm`): the oracle asks first."""
    delay_s: float = 0.0

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        actions, communicate = _ground_truth(self.spec.task)
        done = sum(
            1
            for m in messages
            if m["role"] == "tool" or (m["role"] == "user" and m.get("content") == USER_DONE)
        )
        if done < len(actions):
            action = actions[done]
            if action.requestor == "user":
                call = {"name": action.name, "arguments": action.arguments}
                return Reply(content=REQUEST + json.dumps(call))
            arguments = json.dumps(action.arguments)
            ask = confirmation_request(self.confirm, messages, action.name, arguments)
            if ask is not None:
                return ask
            return Reply(content=None, tool_calls=[ToolCall(f"call_{done}", action.name, arguments)])
        return Reply(content=f"{statement(communicate)} {DONE}".strip())


@dataclass(frozen=True, slots=True)
class Tau2OracleUser:
    spec: ConversationSpec

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        # The simulator's view has the roles swapped: the agent speaks as "user".
        last = messages[-1]
        if last["role"] == "tool":
            return Reply(content=USER_DONE)
        said = last.get("content") or ""
        if said.startswith(REQUEST):
            call = json.loads(said[len(REQUEST) :])
            index = sum(1 for m in messages if m["role"] == "tool")
            arguments = json.dumps(call["arguments"])
            return Reply(content=None, tool_calls=[ToolCall(f"user_call_{index}", call["name"], arguments)])
        return Reply(content=scripted_answer(self.spec, messages))
