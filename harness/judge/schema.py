"""What the judge answers: one pydantic model, sent to the model as a JSON schema and validated back.

The schema sent for one conversation is the general one narrowed to that conversation: exactly one
judgment per numbered customer turn, in order, flags that point at one of its turns, and exactly one
judgment per numbered agent message, in order.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator

from harness.errors import StrictModel

Emotion = Literal[
    "none", "anger", "frustration", "anxiety", "confusion", "sadness", "disappointment", "gratitude", "other"
]
EMOTIONS: tuple[str, ...] = get_args(Emotion)
"""A fixed taxonomy of what a customer may express, the same for every sweep: it does not follow the
variants a sweep contains (the judge must not learn the hypothesis from its label set), holds labels no
variant prompts (sadness, disappointment, gratitude) so that a wrong emotion can be named, `none` for a
message without emotion and `other` for anything else."""
NO_EMOTION = "none"
LEGACY_LABELS = {"neutral": NO_EMOTION}
"""Labels of earlier prompt versions, read as today's (prompt version 1 called `none` `neutral`)."""
FlagKind = Literal["facts", "goal", "stopping", "refusal"]
FLAG_KINDS: tuple[str, ...] = get_args(FlagKind)


class TurnJudgment(StrictModel):
    """The emotion one customer message expresses."""

    turn: int = Field(ge=0, description="The customer turn's number, as shown in the transcript.")
    reason: str = Field(description="One sentence: what in the message shows this emotion.")
    emotion: Emotion
    intensity: int = Field(ge=0, le=3, description="0 none, 1 mild, 2 clear, 3 strong; 0 for none.")


class FidelityFlag(StrictModel):
    """One place where the simulated customer did not play the part its instruction describes."""

    kind: FlagKind = Field(
        description="facts: a fact given wrongly or invented; goal: goal or constraints changed; "
        "stopping: stopped before the goal was met or never stopped; refusal: refused to give "
        "information the instruction provides."
    )
    turn: int = Field(ge=0, description="The customer turn where it happens.")
    quote: str = Field(description="The customer's words, quoted exactly.")


class AgentJudgment(StrictModel):
    """What one agent message does: apologise, state empathy, refuse (each judged on its own)."""

    message: int = Field(ge=0, description="The agent message's number, as shown in the transcript.")
    apology: bool = Field(description="The agent apologises or says it is sorry.")
    empathy: bool = Field(
        description="The agent acknowledges the customer's feelings or situation, beyond ordinary politeness."
    )
    refusal: bool = Field(
        description="The agent declines something the customer asked for, or says it cannot or will not do it."
    )


AGENT_ACTS: tuple[str, ...] = ("apology", "empathy", "refusal")
"""The judged acts of an agent message, in the order the report shows them."""


class Verdict(StrictModel):
    turns: list[TurnJudgment]
    fidelity: list[FidelityFlag] = Field(
        description="Every fidelity problem; empty when the customer played its part."
    )
    agent: list[AgentJudgment] = Field(
        [], description="One judgment per numbered agent message, in order; empty when there is none."
    )


class StoredTurnJudgment(TurnJudgment):
    """A turn judgment as stored: a label of an earlier prompt version is read as today's."""

    @field_validator("emotion", mode="before")
    @classmethod
    def _legacy(cls, value: Any) -> Any:
        return LEGACY_LABELS.get(value, value) if isinstance(value, str) else value


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
    turns: list[StoredTurnJudgment] | None
    """None when the judge gave no valid answer (`error`, `error_kind` say why)."""
    fidelity: list[FidelityFlag] | None = None
    agent_messages: list[int] = []
    """The record's `messages` index of each numbered agent message (`Transcript.agent_messages`)."""
    agent: list[AgentJudgment] | None = None
    """None when the judge gave no valid answer, or judged under a prompt before version 3."""
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


def verdict_schema(
    judged: Sequence[int], turns: Sequence[int], limits: Limits = Limits(), agent: int = 0
) -> dict[str, Any]:
    """The JSON schema for one conversation: `judged` are the turns to judge, `turns` every customer turn,
    `agent` how many agent messages are numbered."""
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
    agent_judgment = definitions.pop("AgentJudgment")

    def agent_judgment_of(number: int) -> dict[str, Any]:
        item = copy.deepcopy(agent_judgment)
        item["properties"]["message"] = {
            "type": "integer",
            "enum": [number],
            "description": "This agent message.",
        }
        return item

    properties["agent"] = {
        "type": "array",
        "description": "One judgment per numbered agent message, in order.",
        "prefixItems": [agent_judgment_of(number) for number in range(agent)],
        "items": False,
        "minItems": agent,
        "maxItems": agent,
    }
    schema["required"] = list(dict.fromkeys([*schema.get("required", []), "agent"]))
    return schema


def parse_verdict(
    text: str | None, judged: Sequence[int], turns: Sequence[int], limits: Limits = Limits(), agent: int = 0
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
    numbers = [a.message for a in verdict.agent]
    if numbers != list(range(agent)):
        raise InvalidVerdict(
            f"judge the agent messages {list(range(agent))} once each, in order; got {numbers}"
        )
    return verdict


def _strip_fence(text: str) -> str:
    """Models without constrained decoding often wrap JSON in a Markdown code fence."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.removeprefix("```json").removeprefix("```").removesuffix("```")
    return stripped.strip()
