"""What the judge answers: one pydantic model, sent to the model as a JSON schema and validated back.

The schema sent for one conversation is the general one narrowed to that conversation: exactly one
judgment per numbered customer turn, in order, and flags that point at one of its turns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Emotion = Literal["neutral", "frustration", "anxiety", "anger", "confusion", "other"]
EMOTIONS: tuple[str, ...] = get_args(Emotion)
FlagKind = Literal["facts", "goal", "stopping", "refusal"]
FLAG_KINDS: tuple[str, ...] = get_args(FlagKind)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TurnJudgment(_Strict):
    """The emotion one customer message expresses."""

    turn: int = Field(ge=0, description="The customer turn's number, as shown in the transcript.")
    reason: str = Field(description="One sentence: what in the message shows this emotion.")
    emotion: Emotion
    intensity: int = Field(ge=0, le=3, description="0 none, 1 mild, 2 clear, 3 strong; 0 for neutral.")


class FidelityFlag(_Strict):
    """One place where the simulated customer did not play the part its instruction describes."""

    kind: FlagKind = Field(
        description="facts: a fact given wrongly or invented; goal: goal or constraints changed; "
        "stopping: stopped before the goal was met or never stopped; refusal: refused to give "
        "information the instruction provides."
    )
    turn: int = Field(ge=0, description="The customer turn where it happens.")
    quote: str = Field(description="The customer's words, quoted exactly.")


class Verdict(_Strict):
    turns: list[TurnJudgment]
    fidelity: list[FidelityFlag] = Field(
        description="Every fidelity problem; empty when the customer played its part."
    )


class JudgmentUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Judgment(BaseModel):
    """One line of `judgments/<judge>.jsonl`: the judge's verdict on one conversation, or why there is none."""

    task_id: int
    trial: int
    conversation_started_at: float | None
    """The judged record's `started_at`: a judgment of an earlier attempt does not count for a retry."""
    judge: str
    judge_model: str | None = None
    judged_turns: list[int] = []
    turns: list[TurnJudgment] | None
    """None when the judge gave no valid answer (`error`, `error_kind` say why)."""
    fidelity: list[FidelityFlag] | None = None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    usage: JudgmentUsage
    latency_s: float = 0.0
    judged_at: float = 0.0


@dataclass(frozen=True)
class Limits:
    """Bounds on the answer, so that constrained decoding always ends within the token budget."""

    reason_chars: int = 300
    quote_chars: int = 200
    flags: int = 8


class InvalidVerdict(ValueError):
    """The judge's answer is not JSON, breaks the schema, or does not fit the conversation."""


def verdict_schema(judged: Sequence[int], turns: Sequence[int], limits: Limits = Limits()) -> dict[str, Any]:
    """The JSON schema for one conversation: `judged` are the turns to judge, `turns` every customer turn."""
    schema = copy.deepcopy(Verdict.model_json_schema())
    definitions = schema["$defs"]
    turn_judgment = definitions.pop("TurnJudgment")
    turn_judgment["properties"]["reason"]["maxLength"] = limits.reason_chars

    def judgment_of(turn: int) -> dict[str, Any]:
        item = copy.deepcopy(turn_judgment)
        item["properties"]["turn"] = {"type": "integer", "enum": [turn], "description": "This customer turn."}
        return item

    flag_props = definitions["FidelityFlag"]["properties"]
    flag_props["turn"] = {
        "type": "integer",
        "enum": list(turns),
        "description": flag_props["turn"]["description"],
    }
    flag_props["quote"]["maxLength"] = limits.quote_chars
    properties = schema["properties"]
    properties["turns"] = {
        "type": "array",
        "description": "One judgment per numbered customer turn, in order.",
        "prefixItems": [judgment_of(turn) for turn in judged],
        "items": False,
        "minItems": len(judged),
        "maxItems": len(judged),
    }
    properties["fidelity"]["maxItems"] = limits.flags
    return schema


def parse_verdict(
    text: str | None, judged: Sequence[int], turns: Sequence[int], limits: Limits = Limits()
) -> Verdict:
    """The answer as a `Verdict`, or `InvalidVerdict` saying what is wrong (fed back on a retry)."""
    body = _strip_fence(text or "")
    try:
        data = json.loads(body, strict=False)  # a raw tab or newline inside a string is harmless here
    except json.JSONDecodeError as error:
        raise InvalidVerdict(f"not valid JSON ({error.msg} at character {error.pos})") from None
    try:
        verdict = Verdict.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise InvalidVerdict(f"schema violation at {where}: {first['msg']}") from None
    seen = [t.turn for t in verdict.turns]
    if seen != list(judged):
        raise InvalidVerdict(f"judge the customer turns {list(judged)} once each, in order; got {seen}")
    long = [t.turn for t in verdict.turns if len(t.reason) > limits.reason_chars]
    if long:
        raise InvalidVerdict(f"reasons longer than {limits.reason_chars} characters at turns {long}")
    if len(verdict.fidelity) > limits.flags:
        raise InvalidVerdict(f"at most {limits.flags} fidelity flags")
    for flag in verdict.fidelity:
        if flag.turn not in turns:
            raise InvalidVerdict(
                f"fidelity flag at turn {flag.turn}, which is not a customer turn {list(turns)}"
            )
        if len(flag.quote) > limits.quote_chars:
            raise InvalidVerdict(f"quote longer than {limits.quote_chars} characters at turn {flag.turn}")
    return verdict


def _strip_fence(text: str) -> str:
    """Models without constrained decoding often wrap JSON in a Markdown code fence."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.removeprefix("```json").removeprefix("```").removesuffix("```")
    return stripped.strip()
