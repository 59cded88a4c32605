"""The simulated user: the environment's user prompt plus the variant's emotional block."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.backends.base import ChatModel
from harness.episode.dynamics import APPRAISAL_INSTRUCTION, Event, Mood, split_appraisal
from harness.episode.record import ModelCall
from harness.episode.types import STOP_TOKEN, Message, Reply, Sampling, ToolCall, ToolSchema
from harness.episode.variants import Intensity, Variant
from harness.errors import ModelInputRejected, UserCutOff, UserSimulatorError

UserStrategy = Literal["llm", "react"]
AGENT_GREETING = "Hi! How can I help you today?"


def simulator_identity(
    backend: str, model: str | None, strategy: str, sampling: dict[str, Any], framing: str
) -> dict[str, Any]:
    """Who plays the user: what two jobs must share for their results to be compared."""
    return {
        "backend": backend,
        "model": model,
        "strategy": strategy,
        "sampling": sampling,
        "framing_sha": hashlib.sha256(framing.encode()).hexdigest()[:16],
    }


def variant_block(variant: Variant, framing: str, intensity: Intensity | None = None) -> str:
    """The text a variant appends to the environment's user prompt, at `intensity` (a reactive user's
    current one; the variant's by default); empty for control. A reactive user stating its own mood
    (llm appraisal) is also told how to state it."""
    if variant.is_control:
        return ""
    block = framing.format(persona=variant.persona_text(intensity).strip()).strip()
    if variant.reactive and variant.dynamics.appraisal == "llm":
        block = f"{block}\n\n{APPRAISAL_INSTRUCTION}"
    return block


def user_prompt(
    base_prompt: str, variant: Variant, framing: str, active: bool, intensity: Intensity | None = None
) -> str:
    """The environment's user prompt (`Domain.user_prompt`), then the variant's block once it is active."""
    block = variant_block(variant, framing, intensity) if active else ""
    return f"{base_prompt}\n\n{block}" if block else base_prompt


def parse_react(text: str) -> str:
    if STOP_TOKEN in text:
        return STOP_TOKEN
    if "User Response:" in text:
        return text.split("User Response:", 1)[1].strip()
    raise UserSimulatorError(f"react user reply has no 'User Response:' section: {text[:200]!r}")


UserTurn = str | list[ToolCall]
"""What the simulated user does in a turn: a message to the agent, or calls of its own tools."""


@dataclass
class UserSimulator:
    """Plays the customer. Its own view of the chat has the roles swapped.

    In a dual-control environment it also has tools of its own (`tools`): a reply with tool
    calls is returned to the loop, which runs them and hands each result back (`tool_result`)
    before asking for the next turn (`resume`).
    """

    model: ChatModel
    instruction: str
    variant: Variant
    framing: str
    sampling: Sampling
    base_prompt: str
    """The control prompt: the environment's own (`Domain.user_prompt`)."""
    strategy: UserStrategy = "llm"
    seed: int = 0
    tools: list[ToolSchema] | None = None
    before_onset: Variant | None = None
    """The persona inside the framing before the variant's onset (neutral); None: the control prompt there."""
    writes: frozenset[str] = frozenset()
    """The domain's writing tools (`Domain.tool_roles.writes`), which a reactive user's rules watch."""
    history: list[Message] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)
    turns: int = 0
    mood: Mood | None = None
    """A reactive user's current intensity (`variant.dynamics`); None for a static one."""
    events: list[Event] = field(default_factory=list)
    """What the agent's last turn did that the dynamics rules watch (recorded on the next user call)."""

    def __post_init__(self) -> None:
        if self.variant.reactive and self.mood is None:
            self.mood = Mood(self.variant.dynamics, self.variant.intensity, self.writes)

    @property
    def intensity(self) -> Intensity | None:
        """The intensity the next message is written at: the current one for a reactive user."""
        if not self.variant.dosed:
            return None
        return self.mood.level if self.mood else self.variant.intensity

    def persona_at(self, turn: int) -> Variant | None:
        """Whose persona shapes the user's `turn`-th message: the variant's, the one before its onset, or none."""
        if self.variant.active_at(turn):
            return self.variant
        return None if self.variant.is_control else self.before_onset

    def system_prompt(self, turn: int) -> str:
        persona = self.persona_at(turn)
        return user_prompt(
            self.base_prompt, persona or self.variant, self.framing, bool(persona), self.intensity
        )

    async def reset(self) -> UserTurn:
        self.history = [{"role": "user", "content": AGENT_GREETING}]
        self.turns = 0
        if self.mood is not None:
            self.mood = Mood(self.variant.dynamics, self.variant.intensity, self.writes)
        return await self._next()

    def appraise(self, messages: list[Message]) -> None:
        """Before the user answers: let the agent's last turn move a reactive user's intensity."""
        if self.mood is not None and self.variant.active_at(self.turns):
            self.events = self.mood.after_agent_turn(messages)

    async def step(self, agent_message: str) -> UserTurn:
        self.history.append({"role": "user", "content": agent_message})
        return await self._next()

    def tool_result(self, call: ToolCall, observation: str) -> None:
        self.history.append(
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": observation}
        )

    async def resume(self) -> UserTurn:
        """The user's next move after its tool calls' results."""
        return await self._next()

    async def _next(self) -> UserTurn:
        prompt = self.system_prompt(self.turns)
        messages = [{"role": "system", "content": prompt}, *self.history]
        started = time.perf_counter()
        try:
            reply: Reply = await self.model.chat(
                messages, self.tools, self.sampling.with_seed(self.seed + len(self.calls))
            )
        except ModelInputRejected as error:
            raise UserSimulatorError(f"the simulated user's model refused its prompt: {error}") from error
        text = (reply.content or "").strip()
        stated = None
        if self.mood is not None and self.variant.dynamics.appraisal == "llm":
            stated, text = split_appraisal(text)
        uses_tools = bool(self.tools and reply.tool_calls)
        if uses_tools:
            self.history.append(reply.to_message())
        else:
            self.history.append({"role": "assistant", "content": text})
        self.calls.append(
            {
                "role": "user",
                "turn": self.turns,
                "affect_active": self.variant.active_at(self.turns),
                "persona": persona.name if (persona := self.persona_at(self.turns)) else None,
                **self._dynamics_fields(stated),
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "cached_tokens": reply.cached_tokens,
                "cache_write_tokens": reply.cache_write_tokens,
                "reasoning_tokens": reply.reasoning_tokens,
                "latency_s": round(reply.latency_s or time.perf_counter() - started, 6),
                "finish_reason": reply.finish_reason,
                **reply.served(),
            }
        )
        if self.mood is not None:
            self.mood.appraised(stated)
        if uses_tools:
            return list(reply.tool_calls)
        self.turns += 1
        if not text:
            if reply.finish_reason == "length":
                thought = (
                    f" after {reply.reasoning_tokens} reasoning tokens" if reply.reasoning_tokens else ""
                )
                raise UserCutOff(
                    f"the user's model was cut off at max_tokens={self.sampling.max_tokens}{thought} with no "
                    f"reply ({reply.completion_tokens} completion tokens): raise the preset's user_sampling.max_tokens"
                )
            raise UserSimulatorError("the simulated user returned an empty message")
        return parse_react(text) if self.strategy == "react" else text

    def _dynamics_fields(self, stated: Intensity | None) -> ModelCall:
        """What a reactive user's call records: the intensity it was written at, the events that moved
        it there, and (llm appraisal) the mood the user stated."""
        if self.mood is None:
            return {}
        fields: ModelCall = {"intensity": self.mood.level, "events": list(self.events)}
        if self.variant.dynamics.appraisal == "llm":
            fields["stated_mood"] = stated
        self.events = []
        return fields
