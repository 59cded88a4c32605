"""The agent's behaviour in one conversation: effort, errors, words, apologies, refusals, giving in.

Apologies/empathy and refusals are counted here with a lexicon: a cheap proxy, labelled as
such wherever it is shown (the judge's `agent` field is the measure; `harness.judge`). A
conversation *gave in* when an agent message refused and a later write of the agent was an
extra one (`anatomy`: a write the task did not require), i.e. the refused request was granted
after all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.analysis.anatomy import Anatomy

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


def behaviour(record: Mapping[str, Any], anatomy: Anatomy | None) -> dict[str, float]:
    messages = list(record.get("messages") or [])
    counts = record.get("counts") or {}
    texts = _agent_texts(messages)
    words = sum(len(t.split()) for _, t in texts)
    refusals = [i for i, t in texts if REFUSAL.search(t)]
    extra_at = [
        f.message for f in (anatomy.faults if anatomy else []) if f.category in ("extra_write", "concession")
    ]
    gave_in = bool(refusals) and any(at is not None and at > refusals[0] for at in extra_at)
    return {
        "user_turns": float(counts.get("user_turns", 0)),
        "tool_calls": float(counts.get("tool_calls", 0)),
        "tool_errors": float(counts.get("tool_errors", 0)),
        "agent_words_per_turn": words / len(texts) if texts else float("nan"),
        "apologies_lexicon": float(sum(len(APOLOGY.findall(t)) > 0 for _, t in texts)),
        "refusals_lexicon": float(len(refusals)),
        "gave_in": float(gave_in),
    }
