"""Plain data passed between the loop, the backends and the stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from typing_extensions import TypedDict

Message = dict[str, Any]
"""An OpenAI-style chat message: role, content, optional tool_calls / tool_call_id / name."""

ToolSchema = dict[str, Any]
"""An OpenAI-style tool description, as τ-bench's `Tool.get_info()` returns it."""

Role = Literal["agent", "user", "judge"]
"""Who a model plays: the agent, the simulated user, or the judge of a score (τ²'s NL assertions)."""

STOP_TOKEN = "###STOP###"
RESPOND_ACTION_NAME = "respond"


class Termination(StrEnum):
    """Why a conversation ended."""

    USER_STOP = "user_stop"
    AGENT_STOP = "agent_stop"
    """The agent ended the conversation (τ² only: its `###STOP###`)."""
    TRANSFER = "transfer_to_human"
    STEP_CAP = "step_cap"
    AGENT_ERROR = "agent_error"
    AGENT_CUT_OFF = "agent_cut_off"
    """The agent's model hit its token limit with nothing to say (a reasoning model still thinking):
    scored as a failure, like any other reply the agent could not finish within its budget."""
    USER_ERROR = "user_error"
    USER_CUT_OFF = "user_cut_off"
    """The simulated user's model hit its token limit with nothing to say: unscored, like a user error."""
    INFRA_ERROR = "infra_error"
    HARNESS_ERROR = "harness_error"
    JUDGE_ERROR = "judge_error"
    """The LLM judge of the score (τ²'s NL assertions) failed: says nothing about the agent."""

    @property
    def scored(self) -> bool:
        """Whether the conversation counts in the agent's metrics.

        Failures of the simulated user, the infrastructure or the harness say nothing about
        the agent, so they are counted apart and left out of reward and pass^k.
        """
        return self in _SCORED

    @property
    def redo_on_resume(self) -> bool:
        return self in (Termination.INFRA_ERROR, Termination.HARNESS_ERROR)


_SCORED = frozenset(
    {
        Termination.USER_STOP,
        Termination.AGENT_STOP,
        Termination.TRANSFER,
        Termination.STEP_CAP,
        Termination.AGENT_ERROR,
        Termination.AGENT_CUT_OFF,
    }
)


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    def with_seed(self, seed: int) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_tokens, seed)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON text of the arguments, exactly as the model produced it."""

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class Served(TypedDict, total=False):
    """What served a reply, where the backend says (`ModelCall.served_model`, `.system_fingerprint`)."""

    served_model: str
    system_fingerprint: str


@dataclass(slots=True)
class Reply:
    """One model reply: text and/or tool calls, with what it cost."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    latency_s: float = 0.0
    parse_error: str | None = None
    """Set when the model's text looked like a tool call the parser could not read."""
    finish_reason: str | None = None
    """`stop` (end of turn), `length` (cut off by max_tokens or the context), ...; None if unknown."""
    reasoning_tokens: int | None = None
    """Tokens of thinking kept out of `content` by a reasoning parser."""
    cache_write_tokens: int | None = None
    """Prompt tokens written to the provider's cache (Anthropic charges them above the input price)."""
    served_model: str | None = None
    """The model version the API says answered (`model` of the response: e.g. `gpt-4o-2024-08-06` for
    `gpt-4o`); None where the backend does not say."""
    system_fingerprint: str | None = None
    """OpenAI chat completions' `system_fingerprint`: the backend configuration that served the reply."""
    native: dict[str, Any] | None = None
    """The provider's own form of the reply where it carries more than text and tool calls (thinking
    blocks, thought signatures, reasoning items): kept in the record and sent back on later turns."""

    def served(self) -> Served:
        """`served_model` and `system_fingerprint` where the backend gave them, for the call's record."""
        served: Served = {}
        if self.served_model:
            served["served_model"] = self.served_model
        if self.system_fingerprint:
            served["system_fingerprint"] = self.system_fingerprint
        return served

    def to_message(self) -> Message:
        message: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_message() for call in self.tool_calls]
        if self.native is not None:
            message["native"] = self.native
        return message


@dataclass(frozen=True, slots=True)
class Action:
    """What τ-bench calls an action: a tool name (or `respond`) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any]
