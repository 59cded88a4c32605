"""Turns conversation records into the viewer's data: a columnar index and compact bodies.

The index holds what the table, filters and pairing need for every conversation; a body holds
what one conversation page shows and is loaded only when opened (or searched). Bodies leave out
what repeats in every record (the policy, stored once per job; the simulator's own copy of the
dialogue; per-call timings), which keeps the viewer a fraction of the JSONL's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.anatomy import Anatomy, anatomy
from harness.episode.types import RESPOND_ACTION_NAME
from harness.job.metrics import is_success
from harness.view.load import Job, Loaded

CATEGORIES = ("job", "env", "split", "variant", "intensity", "model", "termination", "fault")
"""Index columns stored as an index into a list of their distinct values."""
NUMBERS = ("task", "trial", "reward", "outcome", "turns", "tool_errors", "tokens", "group")
BASELINES = ("neutral", "control")
"""The baseline the flipped filter compares with by default: the first of these present."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, default: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return value


def _tool_calls(message: dict[str, Any]) -> list[dict[str, str]]:
    calls = []
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = _dict(call.get("function")) or call
        calls.append(
            {
                "id": _text(call.get("id")),
                "name": _text(function.get("name")),
                "args": _text(function.get("arguments")),
            }
        )
    return calls


def _messages(record: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The policy (system prompt) and the dialogue: `r` role (u, a, t; ut: the user's own tool calls,
    dual control), `c` text, `tc` tool calls."""
    policy = ""
    compact = []
    for message in record.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "system":
            policy = _text(message.get("content"))
        elif role == "user" and message.get("tool_calls"):
            compact.append({"r": "ut", "c": _text(message.get("content")), "tc": _tool_calls(message)})
        elif role == "user":
            compact.append({"r": "u", "c": _text(message.get("content"))})
        elif role == "assistant":
            item: dict[str, Any] = {"r": "a", "c": _text(message.get("content"))}
            calls = _tool_calls(message)
            if calls:
                item["tc"] = calls
            compact.append(item)
        elif role == "tool":
            compact.append(
                {"r": "t", "c": _text(message.get("content")), "id": _text(message.get("tool_call_id"))}
            )
    return policy, compact


def _actions(actions: Any) -> list[dict[str, Any]]:
    """Tool actions only: replies to the user (`respond`) are in the dialogue."""
    if not isinstance(actions, list):
        return []
    return [
        {"name": _text(a.get("name")), "kwargs": _dict(a.get("kwargs"))}
        for a in actions
        if isinstance(a, dict) and a.get("name") != RESPOND_ACTION_NAME
    ]


def _affect(record: dict[str, Any], user_turns: int) -> list[bool]:
    """Whether the emotion shaped each user turn: recorded per call, else from the onset."""
    recorded = {
        c.get("turn"): bool(c.get("affect_active"))
        for c in record.get("calls") or []
        if isinstance(c, dict) and c.get("role") == "user" and "affect_active" in c
    }
    onset = _number(record.get("onset_after_turns"), 0)
    emotional = record.get("variant") not in (None, *BASELINES) and record.get("intensity") is not None
    return [recorded.get(turn, emotional and turn >= onset) for turn in range(user_turns)]


def _mark_faults(
    record: dict[str, Any], messages: list[dict[str, Any]], found: Anatomy | None
) -> dict[str, Any]:
    """The page's anatomy block; each agent message at fault gets `f` (its categories) and the first
    wrong, extra or missing write's message `ff` (highlighted)."""
    if found is None:
        return {"main": "", "faults": []}
    kept = [
        i
        for i, m in enumerate(record.get("messages") or [])
        if isinstance(m, dict) and m.get("role") in ("user", "assistant", "tool")
    ]
    position = {original: compact for compact, original in enumerate(kept)}
    faults = []
    for fault in found.faults:
        at = position.get(fault.message) if fault.message is not None else None
        if at is not None:
            messages[at].setdefault("f", []).append(fault.category)
        faults.append({"k": fault.category, "d": fault.detail, "m": at})
    first = found.first_write_fault
    if first is not None and first.message in position:
        messages[position[first.message]]["ff"] = first.category
    return {"main": found.main_fault, "faults": faults}


def _dynamics(record: dict[str, Any], user_turns: int) -> tuple[list[str | None], list[list[str]]]:
    """A reactive user's intensity at each user turn and the events that moved it there (None, [] elsewhere)."""
    calls = {
        c.get("turn"): c
        for c in reversed(record.get("calls") or [])  # a turn's first call: the one its events are on
        if isinstance(c, dict) and c.get("role") == "user" and isinstance(c.get("intensity"), str)
    }
    intensities = [calls[t]["intensity"] if t in calls else None for t in range(user_turns)]
    events = [
        [e for e in calls[t].get("events") or [] if isinstance(e, str)] if t in calls else []
        for t in range(user_turns)
    ]
    return intensities, events


def body(
    record: dict[str, Any],
    messages: list[dict[str, Any]],
    judged: dict[int, dict[str, Any]],
    policy_id: int,
    found: Anatomy | None = None,
) -> dict[str, Any]:
    """What one conversation page shows; `messages` are the record's, compacted by `_messages`."""
    user_turns = sum(1 for m in messages if m["r"] == "u")
    info = _dict(record.get("reward_info"))
    reward_info = _dict(info.get("info"))
    outputs = reward_info.get("outputs") if isinstance(reward_info.get("outputs"), dict) else None
    intensities, events = _dynamics(record, user_turns)
    return {
        "instruction": _text(record.get("instruction")),
        "affect_words": [w for w in record.get("instruction_affect") or [] if isinstance(w, str)],
        "user_id": _text(record.get("user_id")),
        "seed": record.get("seed"),
        "error": record.get("error") if isinstance(record.get("error"), str) else None,
        "scored": bool(record.get("scored")),
        "duration_s": _number(record.get("duration_s"), 0),
        "counts": _dict(record.get("counts")),
        "usage": _dict(record.get("usage")),
        "onset": _number(record.get("onset_after_turns"), 0),
        "policy": policy_id,
        "messages": messages,
        "affect": _affect(record, user_turns),
        "dynamics": record.get("dynamics") if isinstance(record.get("dynamics"), str) else None,
        "intensities": intensities,
        "events": events,
        "judge": {str(turn): j for turn, j in sorted(judged.items())},
        "gt_actions": _actions(info.get("actions")),
        "actions": _actions(record.get("actions")),
        "r_actions": reward_info.get("r_actions"),
        "outputs": outputs,
        "has_reward_info": bool(info),
        "anatomy": _mark_faults(record, messages, found),
    }


def _outcome(record: dict[str, Any]) -> int:
    """1 success, 0 a scored failure, -1 not scored (user, infrastructure or harness error)."""
    if not record.get("scored"):
        return -1
    return int(is_success(_number(record.get("reward"), 0.0)))


def _seed(record: dict[str, Any]) -> int | None:
    seed = record.get("seed")
    return seed if isinstance(seed, int) else None


def _tokens(usage: Any) -> int:
    if not isinstance(usage, dict):
        return 0
    keys = ("agent_prompt_tokens", "agent_completion_tokens", "user_prompt_tokens", "user_completion_tokens")
    return int(sum(_number(usage.get(k), 0) for k in keys))


class IndexBuilder:
    """Collects the index one record at a time and hands back each record's body."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.values: dict[str, dict[str, int]] = {name: {} for name in CATEGORIES}
        self.cols: dict[str, list[Any]] = {name: [] for name in (*CATEGORIES, *NUMBERS)}
        self.groups: dict[tuple[Any, ...], int] = {}
        self.policies: dict[str, int] = {}

    def _code(self, column: str, value: Any) -> int:
        text = "" if value is None else str(value)
        return self.values[column].setdefault(text, len(self.values[column]))

    def add(self, job: Job, record: dict[str, Any]) -> dict[str, Any]:
        task, trial = int(record["task_id"]), int(record["trial"])
        found = anatomy(record) if record.get("env") else None
        category = {
            "job": job.name,
            "env": record.get("env"),
            "split": record.get("split"),
            "variant": record.get("variant"),
            "intensity": record.get("intensity"),
            "model": record.get("model"),
            "termination": record.get("termination"),
            "fault": found.main_fault if found else "",
        }
        for column, value in category.items():
            self.cols[column].append(self._code(column, value))
        counts = _dict(record.get("counts"))
        # the (task, trial)'s seed is the same in every variant of a run: it tells runs apart
        pair = (category["model"], category["env"], category["split"], task, trial, _seed(record))
        self.cols["task"].append(task)
        self.cols["trial"].append(trial)
        self.cols["reward"].append(round(_number(record.get("reward"), 0.0), 4))
        self.cols["outcome"].append(_outcome(record))
        self.cols["turns"].append(int(_number(counts.get("user_turns"), 0)))
        self.cols["tool_errors"].append(int(_number(counts.get("tool_errors"), 0)))
        self.cols["tokens"].append(_tokens(record.get("usage")))
        self.cols["group"].append(self.groups.setdefault(pair, len(self.groups)))
        policy, messages = _messages(record)
        policy_id = self.policies.setdefault(policy, len(self.policies))
        return body(record, messages, job.judgments.get((task, trial), {}), policy_id, found)

    def index(self, loaded: Loaded) -> dict[str, Any]:
        variants = list(self.values["variant"])
        return {
            "title": self.title,
            "count": len(self.cols["task"]),
            "values": {column: list(found) for column, found in self.values.items()},
            "cols": self.cols,
            "baseline": next((b for b in BASELINES if b in variants), variants[0] if variants else ""),
            "skipped": [{"path": s.path, "line": s.line, "reason": s.reason} for s in loaded.skipped],
            "replaced": sum(job.replaced for job in loaded.jobs),
            "jobs_without_conversations": [job.name for job in loaded.jobs if not job.kept],
        }


@dataclass
class ViewerData:
    index: dict[str, Any]
    """Columns (`cols`), the distinct values of each category column (`values`) and the rest."""
    bodies: list[dict[str, Any]]
    """One per index row, in row order."""
    policies: list[str] = field(default_factory=list)


def build_data(loaded: Loaded, title: str) -> ViewerData:
    """The whole viewer's data in memory (`write.write_viewer` streams it instead)."""
    builder = IndexBuilder(title)
    bodies = [builder.add(job, record) for job in loaded.jobs for record in job.records()]
    return ViewerData(builder.index(loaded), bodies, list(builder.policies))
