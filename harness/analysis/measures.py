"""The per-conversation measures as flat columns: one anatomy count per category, the first fault, behaviour."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.analysis.anatomy import CATEGORIES, anatomy
from harness.analysis.behaviour import behaviour, extra_write_messages, lexicon_acts
from harness.domains.tau2.retrieval import classify_retrieval

NAN = float("nan")
FAULT_COLUMNS = [f"fault_{c}" for c in CATEGORIES]
LEXICON_COLUMNS = ["apologies_lexicon", "refusals_lexicon", "gave_in"]


def measure_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """`fault_<category>` counts (NaN when unscored), `main_fault` ("" when none), the first write fault's
    message index (-1 when none), the last extra write's (-1 when none: `gave_in` from judged refusals
    needs it), the lexicon measures (`gave_in_source` "lexicon"), and the `messages` indexes of the agent
    messages the lexicon reads as an apology and as a refusal (the judge's agreement with it needs them)."""
    found = anatomy(record)
    measured = behaviour(record, found)
    first = found.first_write_fault if found else None
    columns: dict[str, Any] = {
        f"fault_{c}": float(n)
        for c, n in (found.counts() if found else dict.fromkeys(CATEGORIES, NAN)).items()
    }
    columns["main_fault"] = found.main_fault if found else ""
    columns["first_write_fault"] = first.category if first else ""
    columns["first_write_fault_message"] = first.message if first and first.message is not None else -1
    extra = [m for m in extra_write_messages(found) if m is not None]
    columns["last_extra_write_message"] = max(extra) if extra else -1
    columns.update({k: measured[k] for k in LEXICON_COLUMNS})
    columns["gave_in_source"] = "lexicon"
    acts = lexicon_acts(record)
    columns["apology_lexicon_at"] = tuple(a.message for a in acts if a.apology)
    columns["refusal_lexicon_at"] = tuple(a.message for a in acts if a.refusal)
    info = record.get("reward_info") or {}
    retrieval = classify_retrieval(info.get("retrieval"), record.get("reward")) if found else None
    columns["retrieval_failure"] = retrieval or ""
    return columns


def fault_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per category, the scored conversations with at least one such fault; `scored`: how many there were."""
    counts = dict.fromkeys(CATEGORIES, 0)
    scored = 0
    for record in records:
        found = anatomy(record)
        if found is None:
            continue
        scored += 1
        for category, count in found.counts().items():
            counts[category] += int(count > 0)
    return {**counts, "scored": scored}
