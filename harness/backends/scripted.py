"""A deterministic backend that plays replies written in its config: a test double as config.

Each conversation replays the same script from its start, one item per call; the last item
repeats. An item is one of:
  {text: "..."}                                  a plain reply
  {tool: name, arguments: {...} | "raw json"}    a tool call (a string is passed through as is)
  {fail: unavailable}                            the backend is down (an infrastructure error)
  {fail: crash}                                  an unexpected exception inside the backend
  {verdict: {emotion: anger, intensity: 2,       a simulated-user judge's verdict (`harness.judge`) for
             reason: "..."}}                     the conversation in its prompt: every customer turn
                                                 to judge gets that emotion, no fidelity flag
  {verdict: {turns: [...], fidelity: [...]}}     the same with the customer part as written
A verdict's agent part is read from the prompt's numbered agent messages by keywords
(`agent_acts`): deterministic, and blind to the variant as the prompt is.
A text or tool item may add `finish_reason` (default `stop`, `tool_calls` for a tool call) and
`reasoning_tokens`: `{text: "", finish_reason: length, reasoning_tokens: 900}` is a reasoning model
cut off while thinking.

As a judge (`judge` role: τ²'s NL assertions) it grades every assertion of the task as `judge`
says: `met`, `unmet`, or `fail` (a reply that is not the judge's JSON).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.backends.base import ChatModel, ConversationSpec, SharedModelBackend
from harness.episode.types import Message, Reply, Role, Sampling, ToolCall, ToolSchema
from harness.errors import BackendUnavailable, ConfigError

ScriptItem = dict[str, Any]
FINISH_REASONS = frozenset({"stop", "length", "tool_calls"})
Verdict = Literal["met", "unmet", "fail"]


def _check(script: Sequence[ScriptItem], where: str) -> list[ScriptItem]:
    if not script:
        raise ConfigError(f"backend.{where} is empty: give at least one reply")
    for item in script:
        if sum(key in item for key in ("text", "tool", "fail", "verdict")) != 1:
            raise ConfigError(
                f"backend.{where}: each item needs exactly one of text/tool/fail/verdict, got {item}"
            )
        verdict = item.get("verdict")
        if verdict is not None and not (
            isinstance(verdict, dict) and ("emotion" in verdict or "turns" in verdict)
        ):
            raise ConfigError(
                f"backend.{where}: a verdict gives `emotion` (and `intensity`) or `turns`, got {verdict!r}"
            )
        if item.get("fail") not in (None, "unavailable", "crash"):
            raise ConfigError(f"backend.{where}: fail must be 'unavailable' or 'crash', got {item['fail']!r}")
        if item.get("finish_reason", "stop") not in FINISH_REASONS:
            raise ConfigError(
                f"backend.{where}: finish_reason must be one of {sorted(FINISH_REASONS)}, got {item['finish_reason']!r}"
            )
    return list(script)


SCRIPTED_APOLOGY = re.compile(r"\b(sorry|apologi[sz]e|apologies|regret)\b", re.IGNORECASE)
SCRIPTED_EMPATHY = re.compile(
    r"\b(i understand|understandabl[ey]|i hear you|that must be|i can imagine|i know how|"
    r"frustrating|upsetting|stressful|(appreciate|thank you for) your patience)\b",
    re.IGNORECASE,
)
SCRIPTED_REFUSAL = re.compile(
    r"\b(can(no|')t|unable to|not able to|not eligible|not allowed|not permitted|against (our|the) policy|"
    r"policy does not|won'?t be able|will not be able|must decline|have to decline)\b",
    re.IGNORECASE,
)


def agent_acts(text: str) -> dict[str, bool]:
    """The scripted judge's reading of one agent message: keywords, its own short lists (not the
    report's lexicon, so that the two can disagree), a plumbing check and not a judgment."""
    return {
        "apology": bool(SCRIPTED_APOLOGY.search(text)),
        "empathy": bool(SCRIPTED_EMPATHY.search(text)),
        "refusal": bool(SCRIPTED_REFUSAL.search(text)),
    }


def _verdict(item: ScriptItem, messages: Sequence[Message]) -> Reply:
    from harness.judge.prompt import read_prompt

    judged, agent = read_prompt(messages)
    written = item["verdict"]
    if "turns" in written:
        customer = {"turns": written["turns"], "fidelity": written.get("fidelity", [])}
    else:
        emotion = written["emotion"]
        intensity = int(written.get("intensity", 0 if emotion == "none" else 2))
        reason = str(written.get("reason", f"scripted verdict: {emotion}"))
        customer = {
            "turns": [
                {"turn": t, "reason": reason, "emotion": emotion, "intensity": intensity} for t in judged
            ],
            "fidelity": [],
        }
    acts = [{"message": number, **agent_acts(text)} for number, text in enumerate(agent)]
    return Reply(content=json.dumps({**customer, "agent": acts}))


def _reply(item: ScriptItem, call_index: int) -> Reply:
    reasoning = item.get("reasoning_tokens")
    if "text" in item:
        text = str(item["text"])
        return Reply(
            content=text,
            completion_tokens=reasoning,
            finish_reason=item.get("finish_reason", "stop"),
            reasoning_tokens=reasoning,
        )
    if "tool" in item:
        arguments = item.get("arguments", {})
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return Reply(
            content=None,
            tool_calls=[ToolCall(f"call_{call_index}", item["tool"], raw)],
            finish_reason=item.get("finish_reason", "tool_calls"),
            reasoning_tokens=reasoning,
        )
    if item["fail"] == "unavailable":
        raise BackendUnavailable("scripted backend: unavailable")
    raise RuntimeError("scripted backend: crash")


@dataclass
class _ScriptedModel:
    script: list[ScriptItem]
    counts_messages_of: str
    delay_s: float

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        index = sum(1 for m in messages if m["role"] == self.counts_messages_of)
        item = self.script[min(index, len(self.script) - 1)]
        return _verdict(item, messages) if "verdict" in item else _reply(item, index)


@dataclass(frozen=True, slots=True)
class ScriptedJudge:
    """Answers τ²'s NL-assertion judge prompt for the conversation's task with a fixed verdict."""

    spec: ConversationSpec
    verdict: Verdict = "met"

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        if self.verdict == "fail":
            return Reply(content="I cannot grade this conversation.")
        results = [
            {"expectedOutcome": a, "reasoning": "scripted verdict", "metExpectation": self.verdict == "met"}
            for a in self.spec.nl_assertions
        ]
        return Reply(content=json.dumps({"results": results}))


class ScriptedBackend(SharedModelBackend):
    name = "scripted"
    plumbing_check = True
    RUNTIME_KEYS = frozenset({"delay_s"})
    """The simulated latency changes how fast it answers, not what."""

    def __init__(
        self,
        agent: Sequence[ScriptItem],
        user: Sequence[ScriptItem] = ({"text": "###STOP###"},),
        delay_s: float = 0.0,
        judge: Verdict = "met",
    ) -> None:
        if judge not in ("met", "unmet", "fail"):
            raise ConfigError(f"backend.judge must be met, unmet or fail, got {judge!r}")
        self.judge = judge
        self.agent_script = _check(agent, "agent")
        self.user_script = _check(user, "user")
        self.delay_s = delay_s

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if role == "judge":
            return ScriptedJudge(conversation, self.judge)
        if role == "agent":
            # agent call i sees i earlier assistant messages
            return _ScriptedModel(self.agent_script, "assistant", self.delay_s)
        # in the simulator's own view the user's earlier replies are the "assistant" messages
        return _ScriptedModel(self.user_script, "assistant", self.delay_s)
