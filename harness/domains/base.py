"""What the loop, the oracle, the report and the tests need of an environment.

An environment is a set of tasks, a policy the agent follows, the agent's tools (and, in a
dual-control environment, the user's), fresh per-conversation state for a task, a way to run
one tool call against that state, and a way to score a finished conversation. τ-bench
(`harness.domains.taubench`) and τ²-bench (`harness.domains.tau2`) implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.backends.base import ChatModel, ConversationSpec
from harness.domains.roles import ToolRoles
from harness.episode.record import ConversationRecord, ModelCall
from harness.episode.types import Action, Message, Role, ToolSchema


def identity_tools_for(roles: ToolRoles, tools_info: Sequence[ToolSchema]) -> frozenset[str]:
    """The domain's identifying tools (`ToolRoles.identify`) that its agent has."""
    return roles.identify & {tool["function"]["name"] for tool in tools_info}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The score of one finished conversation."""

    reward: float
    info: dict[str, Any] | None
    """The environment's own reward details (τ-bench's `RewardResult`, τ²'s `RewardInfo`)."""
    judge_error: str | None = None
    """Set when an LLM judge of the score failed: the conversation is then left unscored."""
    judge_call: ModelCall | None = None
    """The judge's model call (`role: judge`, tokens, latency), recorded with the conversation's calls."""


@dataclass(frozen=True, slots=True)
class FinishedConversation:
    """What a domain scores: one conversation's task, its final state and its transcript."""

    task_id: int
    state: Any
    messages: Sequence[Message]
    replies: Sequence[str]
    """The agent's text replies, in order."""


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """What a domain writes its own results format from: a job's latest records and its facts."""

    records: Sequence[ConversationRecord]
    output_dir: Path
    info: dict[str, Any]
    """The job's facts (`Job.info`: env, variant, model, backend, ...)."""
    trials: int
    max_steps: int


@runtime_checkable
class Domain(Protocol):
    """One environment and task split, shared read-only by every conversation of a job."""

    name: str
    split: str
    wiki: str
    """The agent's system prompt: the policy it follows."""
    tools_info: list[ToolSchema]
    """The agent's tools, as OpenAI-style schemas."""
    terminate_tools: frozenset[str]
    """Agent tools whose call ends the conversation (τ-bench's transfer to a human)."""
    identity_tools: frozenset[str]
    """Agent tools whose success identifies the user (`ToolRoles.identify` it has); recorded in every
    record, where the report's deterministic fidelity reads whether the user authenticated."""
    tool_roles: ToolRoles
    """Which agent tools write, need the user's explicit yes, concede, authenticate or transfer."""
    agent_can_stop: bool
    user_stop_tokens: tuple[str, ...]
    """Tokens in a user message that end the conversation (τ-bench: `###STOP###`; τ² adds
    `###TRANSFER###` and `###OUT-OF-SCOPE###`)."""
    user_strategies: tuple[str, ...]
    """The `user=` strategies the environment has a user prompt for."""
    provenance: dict[str, str]
    """What its scores depend on beyond the config (τ²'s version, banking's retrieval configuration):
    part of the job's fingerprint, so jobs that differ in it are never compared or resumed as one."""
    """Whether `###STOP###` in an agent reply ends the conversation (τ²'s agent stop)."""

    @property
    def tasks(self) -> Sequence[Any]: ...

    def prepare(self) -> None:
        """Load what every conversation shares now (a blocking call, run once per job)."""
        ...

    def user_tools_info(self, task_id: int) -> list[ToolSchema] | None:
        """The simulated user's own tools for a task (dual control), or None."""
        ...

    def instruction(self, task_id: int) -> str:
        """What the simulated user is told to do."""
        ...

    def user_id(self, task_id: int) -> str: ...

    def user_prompt(self, task_id: int, strategy: str) -> str:
        """The control user's system prompt, the environment's own, byte for byte."""
        ...

    def new_state(self, task_id: int) -> Any:
        """Fresh state of the world for one conversation of a task."""
        ...

    def execute(self, state: Any, action: Action, requestor: Role = "agent") -> str:
        """Run one tool call on `state` and return its observation (errors included)."""
        ...

    def noop_task(self, task_id: int) -> bool:
        """Whether doing nothing passes the task."""
        ...

    def nl_assertions(self, task_id: int) -> tuple[str, ...]:
        """The task's natural-language assertions an LLM judge grades (τ²); empty where none."""
        ...

    def oracle(self, spec: ConversationSpec, role: Role, delay_s: float) -> ChatModel:
        """The plumbing check's player of `role` (`agent` or `user`) for one conversation: the
        task's ground truth replayed (`backend=oracle`); `delay_s` is the agent's simulated latency."""
        ...

    def export_results(self, job: FinishedJob) -> None:
        """Write the job's results in the environment's own format too, where it has one."""
        ...

    async def evaluate(self, conversation: FinishedConversation, judge: ChatModel | None) -> Outcome:
        """Score a finished conversation from its final state and transcript."""
        ...
