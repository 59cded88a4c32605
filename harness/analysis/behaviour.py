"""The agent's behaviour in one conversation: effort, errors, words, apologies, refusals, giving in.

Apologies/empathy and refusals are counted here with a lexicon: a cheap proxy, labelled as
such wherever it is shown. The measure is the judge's `agent` field (`harness.judge`: per agent
message apology, empathy, refusal, blind to the variant), read here as `JudgedAgent` and joined
to the conversations by the report (`harness.report.agent_acts`). A conversation *gave in* when
an agent message refused and a later write of the agent was an extra one (`anatomy`: a write the
task did not require), i.e. the refused request was granted after all (`gave_in`: with the
lexicon's refusals here, with the judge's where the report has them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.anatomy import Anatomy
from harness.job.metrics import agent_texts, words_per_turn

APOLOGY = re.compile(
    r"\b(sorry|apologi[sz]e|apologies|i understand (how|your|that)|understand your frustration|"
    r"i hear you|that must be|i can imagine|i appreciate your patience|thank you for your patience)\b",
    re.IGNORECASE,
)
REFUSAL = re.compile(
    r"\b(i can(no|')t|i am unable|i'm unable|i am not able|i'm not able|not eligible|not allowed|"
    r"unable to (process|do|offer|help|cancel|refund|modify|change)|against (our|the) policy|"
    r"(our|the) policy does not|i won'?t be able|i will not be able)\b",
    re.IGNORECASE,
)

MEASURES = (
    "user_turns",
    "tool_calls",
    "tool_errors",
    "agent_words_per_turn",
    "apologies_lexicon",
    "refusals_lexicon",
    "gave_in",
)
"""Per-conversation behaviour measures, in the order the report shows them."""


def _agent_texts(messages: list[Mapping[str, Any]]) -> list[tuple[int, str]]:
    return [
        (i, str(m["content"]))
        for i, m in enumerate(messages)
        if m.get("role") == "assistant" and isinstance(m.get("content"), str) and m["content"].strip()
    ]


@dataclass(frozen=True)
class LexiconActs:
    """One agent message as the lexicon reads it (`messages` index)."""

    message: int
    apology: bool
    """APOLOGY matched: an apology or an empathy statement (the lexicon does not tell them apart)."""
    refusal: bool


def lexicon_acts(record: Mapping[str, Any]) -> list[LexiconActs]:
    """Every agent message with words (the ones the judge numbers), as the lexicon reads it."""
    return [
        LexiconActs(i, bool(APOLOGY.search(t)), bool(REFUSAL.search(t)))
        for i, t in _agent_texts(list(record.get("messages") or []))
    ]


@dataclass(frozen=True)
class JudgedAgent:
    """The judge's `agent` field of one conversation, on the record's `messages` indexes."""

    apologies: tuple[int, ...]
    empathy: tuple[int, ...]
    refusals: tuple[int, ...]
    judged: tuple[int, ...]
    """Every agent message the judge judged (the ones `lexicon_acts` reads too)."""


def judged_agent(judgment: Mapping[str, Any] | None) -> JudgedAgent | None:
    """The judgment's agent acts, or None when it has none (a judge error, or a prompt before version 3)."""
    acts = (judgment or {}).get("agent")
    if acts is None:
        return None
    at = list((judgment or {}).get("agent_messages") or [])

    def where(act: str) -> tuple[int, ...]:
        return tuple(at[a["message"]] for a in acts if a.get(act) and a["message"] < len(at))

    judged = tuple(at[a["message"]] for a in acts if a["message"] < len(at))
    return JudgedAgent(where("apology"), where("empathy"), where("refusal"), judged)


def gave_in(refusals: Sequence[int], extra_writes: Sequence[int | None]) -> bool:
    """Whether an extra write (or concession) came after the first refusal (`messages` indexes)."""
    return bool(refusals) and any(at is not None and at > min(refusals) for at in extra_writes)


def extra_write_messages(anatomy: Anatomy | None) -> list[int | None]:
    return [
        f.message for f in (anatomy.faults if anatomy else []) if f.category in ("extra_write", "concession")
    ]


def behaviour(record: Mapping[str, Any], anatomy: Anatomy | None) -> dict[str, float]:
    """The measures of `MEASURES`, apologies, refusals and giving in read with the lexicon."""
    messages = list(record.get("messages") or [])
    counts = record.get("counts") or {}
    texts = _agent_texts(messages)
    words = words_per_turn(agent_texts(messages))
    refusals = [i for i, t in texts if REFUSAL.search(t)]
    return {
        "user_turns": float(counts.get("user_turns", 0)),
        "tool_calls": float(counts.get("tool_calls", 0)),
        "tool_errors": float(counts.get("tool_errors", 0)),
        "agent_words_per_turn": float("nan") if words is None else words,
        "apologies_lexicon": float(sum(len(APOLOGY.findall(t)) > 0 for _, t in texts)),
        "refusals_lexicon": float(len(refusals)),
        "gave_in": float(gave_in(refusals, extra_write_messages(anatomy))),
    }
