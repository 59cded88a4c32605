"""The simulated user: the environment's user prompt plus the variant's emotional block."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.backends.base import ChatModel
from harness.episode.types import STOP_TOKEN, Message, Reply, Sampling, ToolCall, ToolSchema
from harness.episode.variants import Variant
from harness.errors import ModelInputRejected, UserSimulatorError

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


def variant_block(variant: Variant, framing: str) -> str:
    """The text a variant appends to the environment's user prompt; empty for control."""
    if variant.is_control:
        return ""
    return framing.format(persona=variant.persona_text().strip()).strip()


def user_prompt(base_prompt: str, variant: Variant, framing: str, active: bool) -> str:
    """The environment's user prompt (`Domain.user_prompt`), then the variant's block once it is active."""
    block = variant_block(variant, framing) if active else ""
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
    history: list[Message] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0

    def system_prompt(self, turn: int) -> str:
        return user_prompt(self.base_prompt, self.variant, self.framing, self.variant.active_at(turn))

    async def reset(self) -> UserTurn:
        self.history = [{"role": "user", "content": AGENT_GREETING}]
        self.turns = 0
        return await self._next()

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
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "cached_tokens": reply.cached_tokens,
                "reasoning_tokens": reply.reasoning_tokens,
                "latency_s": round(reply.latency_s or time.perf_counter() - started, 6),
                "finish_reason": reply.finish_reason,
            }
        )
        if uses_tools:
            return list(reply.tool_calls)
        self.turns += 1
        if not text:
            raise UserSimulatorError("the simulated user returned an empty message")
        return parse_react(text) if self.strategy == "react" else text
