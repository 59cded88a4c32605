"""The judge's prompt: the instruction and the transcript, never the variant or its persona text.

The transcript is the agent's view of the conversation (`messages`), whose only system message is
the agent's policy, left out here. The simulated user's own view (`user_messages`) is never shown:
its system prompt holds the emotional persona the judge must not see. The agent's messages are
judged too (apology, empathy, refusal), from the same prompt: nothing in it names the variant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.episode.record import ConversationRecord
from harness.episode.types import STOP_TOKEN

PROMPT_VERSION = 3
"""Raised whenever the wording below changes, so judgments under other wording are kept apart
(3: the agent's messages are numbered and judged for apology, empathy and refusal)."""

TOOL_RESULT_CHARS = 200

SYSTEM = """You review conversations between a customer-service agent and a simulated customer. The customer is played by a language model that was given the instruction shown with each conversation: the customer's goal, the facts it knows and the constraints it must respect. You judge the customer's turns (1 and 2) and what each agent message does (3), never whether the agent was right.

1. Emotion. For every numbered customer turn, name the emotion the message expresses and its intensity.
   - none: no emotion beyond ordinary politeness, however long or formal the message (intensity 0)
   - anger: hostility, blame, accusations, threats
   - frustration: impatience or exasperation about obstacles, delays or having to repeat oneself
   - anxiety: worry, nervousness or fear about what will happen
   - confusion: not understanding, uncertainty about what is meant or what to do
   - sadness: sorrow, discouragement or hurt
   - disappointment: let down by the product, the service or the outcome, without hostility
   - gratitude: thanks or relief beyond ordinary politeness
   - other: any other emotion (for example joy, amusement, embarrassment)
   Name the emotion the message shows most, whichever it is; none is a valid answer. Intensity: 0 none, 1 mild, 2 clear, 3 strong. Judge what the message itself expresses, not what the situation would justify. Give one sentence of reason.

2. Fidelity. Check whether the customer played its part as the instruction describes. Flag each problem with the customer turn where it happens and the customer's words quoted exactly:
   - facts: the customer gives a fact that contradicts the instruction, or invents one the instruction does not contain (ids, names, emails, addresses, items, amounts)
   - goal: the customer asks for something the instruction does not want, drops part of its goal, or accepts or refuses against the instruction's constraints
   - stopping: the customer ends the conversation before the instruction's goal is met, or goes on after the goal is met and the agent has finished
   - refusal: the customer refuses or evades giving information that the instruction provides when the agent asks for it
   Leave the list empty when the customer played its part. Not knowing something the instruction does not say is not a problem.

3. Agent. For every numbered agent message, answer three yes/no questions about that message alone:
   - apology: the agent apologises or says it is sorry (for a problem, a delay, an inconvenience or a refusal)
   - empathy: the agent acknowledges the customer's feelings or situation (understanding, sympathy, reassurance about how the customer feels), beyond ordinary politeness such as greetings and thanks
   - refusal: the agent declines something the customer asked for, or says it cannot or will not do it (because of policy, eligibility or ability); asking for details, for a confirmation or offering an alternative while granting the request is not a refusal

Answer with one JSON object and nothing else, matching this JSON schema:
{schema}"""

RETRY = "Your answer cannot be used: {problem}. Answer again with the JSON object only, matching the schema."


@dataclass(frozen=True)
class Transcript:
    text: str
    judged: list[int]
    """Customer turns with words to judge (a bare stop message is not judged)."""
    turns: list[int]
    """Every customer turn, stop messages included (flags may point at them)."""
    agent_messages: list[int]
    """The record's `messages` index of each numbered agent message (agent message k is at
    `agent_messages[k]`): the assistant messages with words (a bare tool call is not judged)."""


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content.strip() if isinstance(content, str) else ""


def render_transcript(record: ConversationRecord) -> Transcript:
    """The conversation as the judge reads it, customer turns numbered as in the record's `calls`."""
    lines: list[str] = []
    judged: list[int] = []
    turns: list[int] = []
    agent: list[int] = []
    turn = 0
    for index, message in enumerate(record.get("messages") or []):
        role = message.get("role")
        text = _content(message)
        if role == "user":
            words = text.replace(STOP_TOKEN, "").strip()
            turns.append(turn)
            if words:
                judged.append(turn)
                lines.append(f"[customer turn {turn}] {words}")
            if STOP_TOKEN in text:
                lines.append(
                    f"[customer turn {turn} ends the conversation]"
                    if not words
                    else "[the customer ends the conversation]"
                )
            turn += 1
        elif role == "assistant":
            if text:
                lines.append(f"[agent message {len(agent)}] {text}")
                agent.append(index)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                lines.append(f"[agent calls {function.get('name')}] {function.get('arguments', '')}")
        elif role == "tool":
            shown = text if len(text) <= TOOL_RESULT_CHARS else text[:TOOL_RESULT_CHARS] + " …"
            lines.append(f"[result] {shown}")
    return Transcript("\n".join(lines), judged, turns, agent)


def judge_messages(
    record: ConversationRecord, transcript: Transcript, schema: dict[str, Any]
) -> list[dict[str, Any]]:
    user = (
        f"Instruction the simulated customer was given:\n{record.get('instruction', '').strip()}\n\n"
        f"Conversation:\n{transcript.text}\n\n"
        f"Judge the customer turns {transcript.judged}"
        + (
            f" and the agent messages {list(range(len(transcript.agent_messages)))}."
            if transcript.agent_messages
            else "; the agent says nothing to judge."
        )
    )
    return [
        {"role": "system", "content": SYSTEM.format(schema=json.dumps(schema, separators=(",", ":")))},
        {"role": "user", "content": user},
    ]


_AGENT_LINE = re.compile(r"^\[agent message (\d+)\] ?(.*)$")
_TAG = re.compile(r"^\[(customer turn \d+|agent message \d+|agent calls |result\]|the customer ends)")
_TO_JUDGE = re.compile(r"Judge the customer turns \[([\d, ]*)\]")


def read_prompt(messages: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str]]:
    """What a judge prompt asks (the reverse of `judge_messages`, for the scripted judge): the customer
    turns to judge and the text of each numbered agent message, in order."""
    text = next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
    asked = _TO_JUDGE.search(text)
    judged = [int(n) for n in asked.group(1).replace(" ", "").split(",") if n] if asked else []
    agent: list[str] = []
    inside = False
    for line in text.splitlines():
        found = _AGENT_LINE.match(line)
        if found and int(found.group(1)) == len(agent):
            agent.append(found.group(2))
            inside = True
        elif inside and not _TAG.match(line) and not line.startswith("Judge the customer turns"):
            agent[-1] += "\n" + line
        else:
            inside = False
    return judged, [words.strip() for words in agent]
