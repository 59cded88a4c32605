"""Emotion that reacts to the agent: a reactive user's intensity moves along its emotion's ladder.

A variant's `dynamics` (`conf/variant/dynamics/*.yaml`) is `static` (the intensity never moves: the
default, and the control for reactive) or `reactive`. A reactive user starts at the variant's
intensity; after each agent turn (everything the agent did since the user last spoke: its tool
calls, their results, its reply) the turn's events are detected deterministically and each rule
whose event occurred moves the intensity by its `move` (+1 escalates, -1 calms), the net move
clamped to `max_move_per_turn` and the ladder's ends. The next user message is written with the
persona of the new intensity, inside the same framing: only the persona moves.

With `appraisal: llm` the user model itself states its mood (`Mood: low|medium|high`, a hidden
first line the agent never sees) before each reply, and that sets the next intensity instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from harness.episode.types import Message

Level = Literal["low", "medium", "high"]
LADDER: tuple[Level, ...] = ("low", "medium", "high")
Event = Literal[
    "repeated_question",
    "tool_error",
    "refusal",
    "transfer_attempt",
    "stalling",
    "apology_with_progress",
    "requested_write_done",
]
EVENTS: tuple[Event, ...] = get_args(Event)


class Rule(BaseModel):
    """One rule: when `event` occurs in an agent turn, move the intensity by `move` rungs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Event
    move: int = Field(ge=-2, le=2)
    why: str = ""


class Dynamics(BaseModel):
    """`variant.dynamics`: whether and how the user's intensity reacts to the agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "static"
    """The rules file's name (`conf/variant/dynamics/<name>.yaml`): part of a reactive job's directory."""
    mode: Literal["static", "reactive"] = "static"
    appraisal: Literal["rules", "llm"] = "rules"
    """`rules`: the events below move it; `llm`: the user model states its own mood each turn."""
    rules: list[Rule] = Field(default_factory=list)
    max_move_per_turn: int = Field(default=1, ge=1, le=2)
    long_reply_words: int = Field(default=120, ge=1)
    """An agent reply longer than this, in a turn without any tool call, is `stalling`."""

    @property
    def reactive(self) -> bool:
        return self.mode == "reactive"


SLOTS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "order_id": r"\border\s*(?:id|number|#)",
        "email": r"\be-?mail\b",
        "zip": r"\b(?:zip|postal)\s*code\b|\bzip\b",
        "name": r"\b(?:full|first|last)\s+name\b|\byour\s+name\b",
        "user_id": r"\buser\s*(?:id|name)\b",
        "payment": r"\bpayment\s+method\b",
        "address": r"\baddress\b",
        "reservation": r"\breservation\s*(?:id|number|code)\b|\bconfirmation\s*(?:code|number)\b",
    }.items()
}
"""What an agent can ask the customer for: the identifying facts of τ-bench's and τ²'s tasks."""
_ASKING = re.compile(
    r"\?|\b(?:please\s+(?:provide|share|give|tell|confirm|send)|could you|can you|may I have|what(?:'s| is))\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
REFUSAL = re.compile(
    r"\b(?:I|we)\s+(?:can(?:no|')t|cannot|am not able to|are not able to|am unable to|are unable to|won't be able to)\b"
    r"|\bnot\s+(?:allowed|permitted|possible|eligible)\b|\bagainst\s+(?:our|the)\s+policy\b",
    re.IGNORECASE,
)
APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|apologies|my apologies)\b", re.IGNORECASE)
TRANSFER = re.compile(
    r"\btransfer(?:ring)?\s+(?:you|your\s+\w+|this)\s+to\s+(?:a|an|our)?\s*(?:human|live|agent|representative|specialist)",
    re.IGNORECASE,
)
READ_PREFIXES = ("get_", "find_", "list_", "search", "calculate", "think", "check_", "kb_", "transfer")
"""Tools whose name starts so read or hand over; any other successful call changed something."""
ERROR_PREFIXES = ("Error", "Unknown action")
"""The loop's own test of a tool error (`counts.tool_errors`)."""


def asked_slots(text: str) -> set[str]:
    """The slots an agent message asks the customer for (a sentence naming the slot and asking)."""
    asked: set[str] = set()
    for sentence in _SENTENCE.findall(text):
        if not _ASKING.search(sentence):
            continue
        asked.update(name for name, pattern in SLOTS.items() if pattern.search(sentence))
    return asked


def is_write(tool_name: str, writes: frozenset[str] | None = None) -> bool:
    """Whether a tool changes the world: one of the domain's `writes` (`Domain.tool_roles`) where it
    names them, else any tool whose name does not read or hand over (`READ_PREFIXES`)."""
    if writes:
        return tool_name in writes
    return not tool_name.lower().startswith(READ_PREFIXES)


def last_agent_turn(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """What the agent did since the user last spoke to it, and everything before that."""
    start = len(messages)
    while start > 0:
        m = messages[start - 1]
        if m["role"] == "user" and m.get("requestor") != "user" and m.get("content"):
            break
        start -= 1
    turn = [m for m in messages[start:] if m.get("requestor") != "user"]
    return turn, list(messages[:start])


def detect_events(
    messages: Sequence[Message], long_reply_words: int = 120, writes: frozenset[str] | None = None
) -> list[Event]:
    """The events of the agent's last turn, in `EVENTS` order, each at most once; `writes`: the
    domain's writing tools (`ToolRoles.writes`; None or empty: told apart by name, `is_write`)."""
    turn, before = last_agent_turn(messages)
    calls = [c for m in turn if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    results = {m.get("tool_call_id"): str(m.get("content") or "") for m in turn if m["role"] == "tool"}
    failed = {i for i, text in results.items() if text.startswith(ERROR_PREFIXES)}
    succeeded = [c for c in calls if c.get("id") in results and c.get("id") not in failed]
    text = " ".join(str(m.get("content") or "") for m in turn if m["role"] == "assistant")
    earlier = " ".join(str(m.get("content") or "") for m in before if m["role"] == "assistant")
    found: set[Event] = set()
    if asked_slots(text) & asked_slots(earlier):
        found.add("repeated_question")
    if failed:
        found.add("tool_error")
    if REFUSAL.search(text):
        found.add("refusal")
    if TRANSFER.search(text) or any("transfer" in c["function"]["name"] for c in calls):
        found.add("transfer_attempt")
    if not calls and len(text.split()) > long_reply_words:
        found.add("stalling")
    if APOLOGY.search(text) and succeeded:
        found.add("apology_with_progress")
    if any(is_write(c["function"]["name"], writes) for c in succeeded):
        found.add("requested_write_done")
    return [event for event in EVENTS if event in found]


MOOD_LINE = re.compile(r"^\s*Mood:\s*(low|medium|high)\s*$", re.IGNORECASE | re.MULTILINE)
APPRAISAL_INSTRUCTION = (
    "Before each message, write how you feel right now on a line of its own, `Mood: low`, `Mood: medium` "
    "or `Mood: high` (how strongly you feel your emotion; the agent never sees this line), then your message."
)


def split_appraisal(text: str) -> tuple[Level | None, str]:
    """The mood a user reply states (None if it states none) and the reply without that line."""
    match = MOOD_LINE.search(text)
    if match is None:
        return None, text
    level: Level = match.group(1).lower()  # type: ignore[assignment]
    return level, (text[: match.start()] + text[match.end() :]).strip()


@dataclass
class Mood:
    """A reactive user's current intensity, and what moved it."""

    dynamics: Dynamics
    level: Level
    writes: frozenset[str] = frozenset()
    """The domain's writing tools (`ToolRoles.writes`), for `requested_write_done`."""
    initial: Level = field(init=False)

    def __post_init__(self) -> None:
        self.initial = self.level

    def _moved(self, steps: int) -> Level:
        index = LADDER.index(self.level) + steps
        return LADDER[max(0, min(len(LADDER) - 1, index))]

    def after_agent_turn(self, messages: Sequence[Message]) -> list[Event]:
        """Apply the rules to the agent's last turn (rules appraisal); returns the turn's events."""
        events = detect_events(messages, self.dynamics.long_reply_words, self.writes)
        if self.dynamics.appraisal == "rules":
            move = sum(rule.move for rule in self.dynamics.rules if rule.event in events)
            limit = self.dynamics.max_move_per_turn
            self.level = self._moved(max(-limit, min(limit, move)))
        return events

    def appraised(self, level: Level | None) -> None:
        """The user model's own statement of its mood (llm appraisal), applied from its next turn."""
        if level is not None and self.dynamics.appraisal == "llm":
            self.level = level

    @property
    def path(self) -> int:
        """Final minus initial rung: > 0 escalated, < 0 calmed."""
        return LADDER.index(self.level) - LADDER.index(self.initial)
