"""Failure anatomy of one conversation: what the agent did to the world against what the task required.

Read deterministically from the record: the agent's executed tool calls (`messages`), the
ground truth the environment's scorer recorded (`reward_info`: τ-bench's `actions` and
`outputs`, τ²'s `action_checks` and `communicate_checks`) and the env's tool roles
(`harness.domains.roles`). A write is a call to a tool in `roles.writes`. Categories:

- missing write: a required write whose tool the agent never called;
- wrong write: the required tool was called, never with the required arguments;
- extra write: a write that changed the world (no error) and matches no required one;
  a concession when its tool gives the user something (refund, exchange, cancellation,
  compensation: `roles.concessions`);
- missing output: a required output (τ-bench) or required information (τ²) not given;
- unconfirmed write: a write in `roles.confirm` whose preceding user message is not an
  explicit yes (`is_affirmation`, a short lexicon);
- auth skipped: a write made before any authentication lookup (`roles.auth`), on tasks whose
  ground truth authenticates (τ-bench's retail ground truth skips the lookup on 44 of 115
  tasks, τ²'s on 44 of 114; there the check would flag the ground truth itself);
- premature transfer: the agent handed over to a human where the ground truth does not;
- step cap: the conversation ran out of steps.

`extra_write` counts the extra writes that concede nothing, `concession` those that do (the two
never overlap). Unscored conversations have no anatomy (None). A scored conversation the environment
did not score (step cap, agent error) has no ground truth in its record: only the categories that
need none (unconfirmed write, auth skipped, transfer, step cap) are counted on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.domains.roles import ToolRoles, roles_for
from harness.episode.record import ConversationRecord
from harness.episode.types import Termination

CATEGORIES = (
    "missing_write",
    "wrong_write",
    "extra_write",
    "concession",
    "missing_output",
    "unconfirmed_write",
    "auth_skipped",
    "premature_transfer",
    "step_cap",
)
"""Every category, in the order the report and the viewer show them."""

MAIN_ORDER = (
    "concession",
    "extra_write",
    "wrong_write",
    "missing_write",
    "missing_output",
    "premature_transfer",
    "step_cap",
    "unconfirmed_write",
    "auth_skipped",
)
"""Which category names a failure with several: what changes the outcome first, policy breaches last
(an unconfirmed write or a skipped authentication does not change the score by itself)."""
WRITE_FAULTS = ("wrong_write", "extra_write", "concession", "missing_write")

AFFIRMATION = re.compile(
    r"\b(yes|yeah|yep|yup|confirm(ed)?|go ahead|proceed|please do|do it|sure|ok(ay)?|correct|that'?s right)\b",
    re.IGNORECASE,
)


def is_affirmation(text: str) -> bool:
    """Whether a user message gives an explicit yes (a lexicon: a cheap, stated proxy)."""
    return bool(AFFIRMATION.search(text))


@dataclass(frozen=True)
class Call:
    """One tool call the agent made and the environment ran."""

    index: int
    """Position of the agent's message in `messages`."""
    name: str
    arguments: dict[str, Any]
    failed: bool
    """Its observation was an error: it changed nothing."""


@dataclass(frozen=True)
class Required:
    name: str
    arguments: dict[str, Any]
    compared: tuple[str, ...] | None = None
    """The argument names that must match (τ²'s `compare_args`); None: all of them."""

    def matched_by(self, call: Call) -> bool:
        keys = self.compared if self.compared is not None else tuple(self.arguments)
        return call.name == self.name and all(call.arguments.get(k) == self.arguments.get(k) for k in keys)


@dataclass(frozen=True)
class Fault:
    category: str
    message: int | None
    """Index in `messages` of the agent message at fault; None for what never happened."""
    detail: str


@dataclass(frozen=True)
class Anatomy:
    missing_write: int = 0
    wrong_write: int = 0
    extra_write: int = 0
    concession: int = 0
    missing_output: int = 0
    unconfirmed_write: int = 0
    auth_skipped: int = 0
    premature_transfer: int = 0
    step_cap: int = 0
    faults: list[Fault] = field(default_factory=list)
    """Every fault found, in the order of the conversation (the never-made ones last)."""

    def counts(self) -> dict[str, int]:
        return {c: int(getattr(self, c)) for c in CATEGORIES}

    @property
    def main_fault(self) -> str:
        """The category that names this conversation's failure ("" when none is found)."""
        return next((c for c in MAIN_ORDER if getattr(self, c)), "")

    @property
    def first_write_fault(self) -> Fault | None:
        """The first wrong, extra or missing write: the one the viewer highlights."""
        writes = [f for f in self.faults if f.category in WRITE_FAULTS]
        return writes[0] if writes else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def agent_calls(messages: Sequence[Mapping[str, Any]]) -> list[Call]:
    """The agent's executed tool calls, in order (the simulated user's own calls left out)."""
    results = {
        m.get("tool_call_id"): str(m.get("content") or "")
        for m in messages
        if m.get("role") == "tool" and m.get("requestor") != "user"
    }
    calls = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            if call.get("id") not in results:
                continue
            function = call.get("function") or {}
            observation = results[call["id"]]
            calls.append(
                Call(
                    index,
                    str(function.get("name")),
                    _arguments(function.get("arguments")),
                    observation.startswith(("Error", "Unknown action")),
                )
            )
    return calls


def ground_truth(reward_info: Mapping[str, Any]) -> tuple[list[Required], dict[str, bool]]:
    """The agent's required actions and whether each required output was given, τ-bench's or τ²'s."""
    if "action_checks" in reward_info or "communicate_checks" in reward_info:  # τ²'s RewardInfo
        required = [
            Required(
                str(check["action"]["name"]),
                dict(check["action"].get("arguments") or {}),
                tuple(check["action"]["compare_args"])
                if check["action"].get("compare_args") is not None
                else None,
            )
            for check in reward_info.get("action_checks") or []
            if check["action"].get("requestor", "assistant") == "assistant"
        ]
        outputs = {str(c["info"]): bool(c["met"]) for c in reward_info.get("communicate_checks") or []}
        return required, outputs
    required = [
        Required(str(a["name"]), dict(a.get("kwargs") or {})) for a in reward_info.get("actions") or []
    ]
    info = reward_info.get("info") or {}
    return required, {str(k): bool(v) for k, v in (info.get("outputs") or {}).items()}


def _preceding_user_text(messages: Sequence[Mapping[str, Any]], index: int) -> str | None:
    for message in reversed(messages[:index]):
        if message.get("role") == "user" and message.get("requestor") != "user" and message.get("content"):
            return str(message["content"])
    return None


def anatomy(record: ConversationRecord | Mapping[str, Any], roles: ToolRoles | None = None) -> Anatomy | None:
    """The conversation's failure anatomy, or None when it is unscored (no ground truth recorded)."""
    if not record.get("scored"):
        return None
    reward_info = record.get("reward_info")
    roles = roles if roles is not None else roles_for(str(record["env"]))
    messages = record.get("messages") or []
    calls = agent_calls(messages)
    required, outputs = ground_truth(reward_info) if reward_info else ([], {})
    known = bool(reward_info)
    faults: list[Fault] = []

    writes = [c for c in calls if c.name in roles.writes]
    used: set[int] = set()
    unmatched: list[Required] = []
    for need in (r for r in required if r.name in roles.writes):
        match = next((i for i, c in enumerate(writes) if i not in used and need.matched_by(c)), None)
        if match is None:
            unmatched.append(need)
        else:
            used.add(match)
    wrong = missing = 0
    for need in unmatched:
        same_tool = [i for i, c in enumerate(writes) if i not in used and c.name == need.name]
        if same_tool:
            pick = next((i for i in same_tool if not writes[i].failed), same_tool[0])
            used.add(pick)
            wrong += 1
            faults.append(
                Fault(
                    "wrong_write", writes[pick].index, f"{need.name}: arguments differ from the required ones"
                )
            )
        else:
            missing += 1
            faults.append(Fault("missing_write", None, f"{need.name} was required and never called"))
    extra = concession = 0
    for i, call in enumerate(writes):
        if not known or i in used or call.failed:
            continue
        kind = "concession" if call.name in roles.concessions else "extra_write"
        concession += kind == "concession"
        extra += kind == "extra_write"
        faults.append(Fault(kind, call.index, f"{call.name} was not required"))

    missing_output = sum(1 for met in outputs.values() if not met)
    faults.extend(
        Fault("missing_output", None, f"not given: {out}") for out, met in outputs.items() if not met
    )

    unconfirmed = 0
    for call in writes:
        if call.name in roles.confirm and not is_affirmation(
            _preceding_user_text(messages, call.index) or ""
        ):
            unconfirmed += 1
            faults.append(
                Fault("unconfirmed_write", call.index, f"{call.name} without an explicit yes before it")
            )

    auth_skipped = 0
    if known and any(r.name in roles.auth for r in required):
        first_auth = next((c.index for c in calls if c.name in roles.auth and not c.failed), None)
        first_write = next((c for c in writes if not c.failed), None)
        if first_write is not None and (first_auth is None or first_auth > first_write.index):
            auth_skipped = 1
            faults.append(
                Fault(
                    "auth_skipped", first_write.index, f"{first_write.name} before the user was authenticated"
                )
            )

    premature = 0
    transfer = next((c for c in calls if c.name in roles.transfer), None)
    if known and transfer is not None and not any(r.name in roles.transfer for r in required):
        premature = 1
        faults.append(Fault("premature_transfer", transfer.index, "handed over a task the agent could solve"))

    step_cap = int(record.get("termination") == Termination.STEP_CAP)
    if step_cap:
        faults.append(Fault("step_cap", None, "ran out of steps"))
    faults.sort(key=lambda f: (f.message is None, f.message or 0))
    return Anatomy(
        missing_write=missing,
        wrong_write=wrong,
        extra_write=extra,
        concession=concession,
        missing_output=missing_output,
        unconfirmed_write=unconfirmed,
        auth_skipped=auth_skipped,
        premature_transfer=premature,
        step_cap=step_cap,
        faults=faults,
    )
