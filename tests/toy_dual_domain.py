"""A tiny dual-control domain shaped like τ²'s telecom, so CI drives the user-tool loop without τ².

The user's phone is in airplane mode and its line is suspended: the agent reactivates the line
(its tool), the user turns airplane mode off (the user's tool). Tasks carry τ²-shaped
`evaluation_criteria`, so the oracle replays them as it does τ² tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import ChatModel, ConversationSpec
from harness.domains.base import FinishedConversation, FinishedJob, Outcome
from harness.domains.roles import ToolRoles
from harness.domains.tau2.oracle import Tau2OracleAgent, Tau2OracleUser
from harness.episode.types import Action, Role, Sampling, ToolSchema

POLICY = "You are a phone support agent. Reactivate suspended lines; ask the user to fix device settings."


def _schema(name: str, properties: dict[str, Any]) -> ToolSchema:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": name.replace("_", " "),
            "parameters": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }


AGENT_TOOLS = [
    _schema("get_line", {"phone": {"type": "string"}}),
    _schema("resume_line", {"phone": {"type": "string"}}),
]
USER_TOOLS = [_schema("toggle_airplane_mode", {}), _schema("check_signal", {})]


@dataclass(frozen=True)
class GroundTruthAction:
    requestor: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Criteria:
    actions: list[GroundTruthAction]
    communicate_info: list[str] = field(default_factory=list)
    nl_assertions: list[str] = field(default_factory=list)
    reward_basis: list[str] = field(default_factory=lambda: ["ENV_ASSERTION", "COMMUNICATE", "NL_ASSERTION"])


@dataclass(frozen=True)
class DualTask:
    id: str
    user_scenario: str
    evaluation_criteria: Criteria


TASKS = [
    DualTask(
        "no_signal",
        "Your phone (555-0101) has no signal. Do what the agent asks on your phone.",
        Criteria(
            actions=[
                GroundTruthAction("assistant", "resume_line", {"phone": "555-0101"}),
                GroundTruthAction("user", "toggle_airplane_mode", {}),
                GroundTruthAction("user", "check_signal", {}),
            ],
            communicate_info=["resumed"],
            nl_assertions=["The agent explains why the line was suspended."],
        ),
    ),
    DualTask(
        "line_status",
        "Ask whether line 555-0101 is active. Change nothing.",
        Criteria(
            actions=[GroundTruthAction("assistant", "get_line", {"phone": "555-0101"})],
            communicate_info=["suspended"],
        ),
    ),
]


class ToyDualDomain:
    name = "toy_dual"
    split = "test"
    wiki = POLICY
    tools_info = AGENT_TOOLS
    terminate_tools: frozenset[str] = frozenset()
    tool_roles = ToolRoles()
    identity_tools: frozenset[str] = frozenset()
    provenance: dict[str, str] = {}  # noqa: RUF012 (read-only)
    agent_can_stop = True
    user_stop_tokens = ("###STOP###", "###TRANSFER###")
    user_strategies = ("llm",)

    def __init__(self) -> None:
        self.tasks = TASKS

    def prepare(self) -> None:
        return None

    def user_tools_info(self, task_id: int) -> list[ToolSchema] | None:
        return USER_TOOLS

    def instruction(self, task_id: int) -> str:
        return self.tasks[task_id].user_scenario

    def user_id(self, task_id: int) -> str:
        return self.tasks[task_id].id

    def user_prompt(self, task_id: int, strategy: str) -> str:
        return f"You are a phone user.\n<scenario>\n{self.instruction(task_id)}\n</scenario>"

    def new_state(self, task_id: int) -> dict[str, Any]:
        return {"line": "suspended", "airplane": True, "signal_checked": False}

    def execute(self, state: Any, action: Action, requestor: Role = "agent") -> str:
        tools = {t["function"]["name"] for t in (USER_TOOLS if requestor == "user" else AGENT_TOOLS)}
        if action.name not in tools:
            return f"Error: {requestor} has no tool {action.name}"
        expected = {"phone"} if requestor == "agent" else set()
        if set(action.kwargs) != expected:
            return f"Error: {action.name} takes {sorted(expected)}, got {sorted(action.kwargs)}"
        if action.name == "resume_line":
            state["line"] = "active"
            return "Line resumed"
        if action.name == "get_line":
            return json.dumps({"status": state["line"]})
        if action.name == "toggle_airplane_mode":
            state["airplane"] = not state["airplane"]
            return f"Airplane mode {'on' if state['airplane'] else 'off'}"
        state["signal_checked"] = True
        return "Signal: " + ("good" if state["line"] == "active" and not state["airplane"] else "none")

    def noop_task(self, task_id: int) -> bool:
        return False

    def nl_assertions(self, task_id: int) -> tuple[str, ...]:
        return tuple(self.tasks[task_id].evaluation_criteria.nl_assertions)

    def oracle(self, spec: ConversationSpec, role: Role, delay_s: float) -> ChatModel:
        if role == "agent":
            return Tau2OracleAgent(spec, self.tool_roles.confirm, delay_s)
        return Tau2OracleUser(spec)

    async def evaluate(self, conversation: FinishedConversation, judge: ChatModel | None) -> Outcome:
        task_id, state, replies = conversation.task_id, conversation.state, conversation.replies
        criteria = self.tasks[task_id].evaluation_criteria
        if criteria.nl_assertions:
            assert judge is not None
            reply = await judge.chat(
                [{"role": "user", "content": str(criteria.nl_assertions)}], None, Sampling()
            )
            try:
                verdicts = [r["metExpectation"] for r in json.loads(reply.content or "")["results"]]
            except (ValueError, KeyError, TypeError) as error:
                return Outcome(0.0, None, judge_error=f"NL-assertion judge: {error}")
        else:
            verdicts = []
        fixed = (
            state["line"] == "active" and not state["airplane"]
            if task_id == 0
            else state["line"] == "suspended"
        )
        said = all(any(info in reply.lower() for reply in replies) for info in criteria.communicate_info)
        reward = float(fixed and said and all(verdicts))
        return Outcome(reward, {"reward": reward, "fixed": fixed, "communicated": said, "nl": verdicts})

    def export_results(self, job: FinishedJob) -> None:
        return None


def load_toy_dual_domain(name: str = "toy_dual", split: str = "test") -> ToyDualDomain:
    return ToyDualDomain()
