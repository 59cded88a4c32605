"""Deterministic fidelity of the simulated user, read from one conversation record.

The instruction holds the identifying facts the user knows (names, zip codes, emails, user,
order and reservation ids). For each fact whose kind the agent asked for, the user's messages
either hold it (given correctly), hold another value of the same kind (given wrong), or hold
neither (withheld). Besides: whether the user authenticated (one of the domain's identity tools,
`identity_tools` in the record, returned without an error), whether the user stopped while the
database goal was unmet, and whether the user stated an identifying value that neither the
instruction nor anything said before it holds (an invented fact).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from harness.episode.record import ConversationRecord
from harness.episode.types import Termination

NAN = float("nan")

FACT_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "zip": re.compile(r"(?<![\w#$.,])\d{5}(?!\w)"),
    "user_id": re.compile(r"\b[a-z]+_[a-z]+_\d{3,5}\b"),
    "order_id": re.compile(r"#W\d{7}\b"),
    "reservation_id": re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b"),
}
"""What a value of each kind looks like, in the instruction and in the user's messages."""

INSTRUCTION_NAME = re.compile(r"\b(?:You are|Your name is|your name is)\s+([A-Z][a-z]+(?: [A-Z][a-z]+)+)")
USER_NAME = re.compile(r"\b(?:[Mm]y name is|[Tt]his is|I am|I'm)\s+([A-Z][a-z]+ [A-Z][a-z]+)\b")

ASKED: dict[str, re.Pattern[str]] = {
    "name": re.compile(r"\bname\b", re.IGNORECASE),
    "email": re.compile(r"e-?mail", re.IGNORECASE),
    "zip": re.compile(r"\bzip|postal code", re.IGNORECASE),
    "user_id": re.compile(r"user ?id|user name|username", re.IGNORECASE),
    "order_id": re.compile(r"order (?:id|number|#)|which order", re.IGNORECASE),
    "reservation_id": re.compile(
        r"reservation (?:id|number|code)|confirmation (?:number|code)", re.IGNORECASE
    ),
}
"""Words in an agent message that ask for a fact of each kind."""

TOOL_FAILURE = ("Error", "Unknown action")


@dataclass(frozen=True)
class Fidelity:
    facts_asked: int
    """Identifying facts of the instruction whose kind the agent asked for."""
    facts_correct: int
    facts_wrong: int
    facts_withheld: int
    fact_wrong: float
    """1 when an asked fact was given wrong, else 0."""
    fact_withheld: float
    """1 when an asked fact was never given, else 0."""
    authenticated: float
    """1 when an identity tool succeeded, 0 when none did, NaN when the record names no identity tools."""
    stop_goal_unmet: float
    """1 when the user stopped while the database goal was unmet; NaN when the goal is unknown."""
    invented: float
    """1 when the user stated an identifying value no instruction or earlier message holds."""
    invented_values: str

    @property
    def failure(self) -> float:
        """The user's own deviations: an asked fact given wrong or withheld, or an invented one."""
        return float(bool(self.fact_wrong or self.fact_withheld or self.invented))

    def as_row(self) -> dict[str, Any]:
        return {f"fid_{key}": value for key, value in {**asdict(self), "failure": self.failure}.items()}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def instruction_facts(instruction: str) -> dict[str, set[str]]:
    """The identifying values the instruction holds, by kind."""
    facts = {kind: set(pattern.findall(instruction)) for kind, pattern in FACT_PATTERNS.items()}
    facts["name"] = set(INSTRUCTION_NAME.findall(instruction))
    return {kind: values for kind, values in facts.items() if values}


def _values(kind: str, text: str) -> set[str]:
    if kind == "name":
        return set(USER_NAME.findall(text))
    return set(FACT_PATTERNS[kind].findall(text))


def _goal_met(record: ConversationRecord) -> bool | None:
    """Whether the final database matched the goal: τ-bench's `r_actions`, τ²'s `db_check`, else from a reward of 1."""
    info = record.get("reward_info") or {}
    inner: dict[str, Any] = info["info"] if isinstance(info.get("info"), dict) else {}
    if "r_actions" in inner:
        return bool(inner["r_actions"])
    db_check = info.get("db_check")
    if isinstance(db_check, dict) and db_check.get("db_match") is not None:
        return bool(db_check["db_match"])
    if record.get("scored") and float(record.get("reward") or 0) >= 1:
        return True
    return None


def _authenticated(messages: Iterable[dict[str, Any]], identity_tools: Any) -> float:
    if not identity_tools:
        return NAN
    tools = set(identity_tools)
    return float(
        any(
            m.get("role") == "tool"
            and m.get("name") in tools
            and m.get("requestor", "agent") == "agent"
            and not _text(m).startswith(TOOL_FAILURE)
            for m in messages
        )
    )


def fidelity(record: ConversationRecord) -> Fidelity:
    messages = [m for m in record.get("messages") or [] if m.get("role") != "system"]
    facts = instruction_facts(str(record.get("instruction") or ""))
    instruction = str(record.get("instruction") or "")
    agent_text = " ".join(_text(m) for m in messages if m.get("role") == "assistant")
    user_text = " ".join(_text(m) for m in messages if m.get("role") == "user")
    correct = wrong = withheld = 0
    for kind, values in facts.items():
        if not ASKED[kind].search(agent_text):
            continue
        for value in values:
            given = value.lower() in user_text.lower()
            others = {v for v in _values(kind, user_text) if v.lower() not in {x.lower() for x in values}}
            if given:
                correct += 1
            elif others:
                wrong += 1
            else:
                withheld += 1
    invented: list[str] = []
    seen = instruction.lower()
    for message in messages:
        text = _text(message)
        if message.get("role") == "user":
            for kind in FACT_PATTERNS:
                invented.extend(v for v in _values(kind, text) if v.lower() not in seen)
        seen += " " + text.lower()
    goal = _goal_met(record)
    stopped = record.get("termination") == Termination.USER_STOP
    asked = correct + wrong + withheld
    return Fidelity(
        facts_asked=asked,
        facts_correct=correct,
        facts_wrong=wrong,
        facts_withheld=withheld,
        fact_wrong=float(wrong > 0),
        fact_withheld=float(withheld > 0),
        authenticated=_authenticated(messages, record.get("identity_tools")),
        stop_goal_unmet=(0.0 if not stopped else NAN if goal is None else float(not goal)),
        invented=float(bool(invented)),
        invented_values=",".join(dict.fromkeys(invented)),
    )
