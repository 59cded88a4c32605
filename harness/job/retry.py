"""Retry passes within a job, and the job's final state: complete, incomplete or accepted.

After the pending conversations ran, the job redoes those that ended in `infra_error` or
`harness_error` in further passes, each after a cool-down that grows, until none is left, the
passes or the time budget are spent, or the backend looks down for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.episode.record import ConversationRecord
from harness.episode.types import Termination
from harness.store import Key, Summary

JobState = Literal["complete", "incomplete", "accepted_incomplete"]
NOT_RUN = "not_run"
"""`missing` reason of a (task, trial) with no record at all."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The `retry:` config block (docs/slurm.md, *Retry passes and job states*)."""

    passes: int = 5
    """Retry passes after the first one; 0 turns them off."""
    cooldown_s: float = 30.0
    """Wait before the first retry pass; each later wait is `growth` times the one before."""
    growth: float = 2.0
    max_total_s: float = 1800.0
    """No retry pass starts later than this after the first pass ended."""
    down_passes: int = 3
    """Stop early after this many retry passes in a row in which every model call failed."""
    accept_incomplete: bool = False
    """Record a job left with infrastructure errors as final (`accepted_incomplete`), exit 0."""
    requeues: int = 2
    """Under SLURM: times an incomplete job requeues itself for another round of passes."""

    def cooldown(self, number: int) -> float:
        """The wait before retry pass `number` (1-based)."""
        return self.cooldown_s * self.growth ** (number - 1)


def to_redo(keys: Iterable[Key], records: Mapping[Key, ConversationRecord]) -> list[Key]:
    """The keys without a record, or whose record ended in an error a rerun redoes."""
    return [
        key for key in keys if key not in records or Termination(records[key]["termination"]).redo_on_resume
    ]


def backend_down(records: Sequence[ConversationRecord]) -> bool:
    """Every conversation of a pass failed on infrastructure before the agent's model answered once.

    (A simulated user on a backend of its own may still answer while the agent's is down.)
    """
    return bool(records) and all(
        record["termination"] == Termination.INFRA_ERROR
        and not any(call.get("role") == "agent" for call in record["calls"])
        for record in records
    )


def outcome(
    wanted: Sequence[Key], records: Mapping[Key, ConversationRecord], accept_incomplete: bool
) -> dict[str, Any]:
    """The summary keys that say whether the job is finished, and what is missing and why.

    `missing` counts conversations without a final result (never run, or ended in an error a
    rerun redoes); `user_errors` are failures of the simulated user, unscored and not redone.
    """
    by_reason = {str(Termination.INFRA_ERROR): 0, str(Termination.HARNESS_ERROR): 0, NOT_RUN: 0}
    user_errors = 0
    for key in wanted:
        record = records.get(key)
        if record is None:
            by_reason[NOT_RUN] += 1
        elif Termination(record["termination"]).redo_on_resume:
            by_reason[record["termination"]] += 1
        elif record["termination"] in (Termination.USER_ERROR, Termination.USER_CUT_OFF):
            user_errors += 1
    missing = sum(by_reason.values())
    state: JobState = "complete"
    if missing:
        state = "accepted_incomplete" if accept_incomplete else "incomplete"
    return {
        "state": state,
        "expected": len(wanted),
        "missing": missing,
        "missing_by_reason": by_reason,
        "user_errors": user_errors,
    }


def describe_missing(summary: dict[str, Any]) -> str:
    """E.g. `3 conversations missing (2 infra_error, 1 not_run); 1 user_error`."""
    known = {key: summary[key] for key in ("missing", "missing_by_reason", "user_errors") if summary.get(key)}
    return Summary.model_validate(known).describe_missing()
