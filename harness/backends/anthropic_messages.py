"""`backend=anthropic`: Claude through Anthropic's Messages API and the official `anthropic` client.

Tools are sent as Anthropic tools (`input_schema`); the system prompt and the tools carry
`cache_control` so the shared prefix (policy + tool schemas) is written once and read after,
and with `cache: conversation` the growing conversation is cached too (a breakpoint on the last
message). `thinking_budget` turns on extended thinking; its thinking blocks (with their
signatures) are kept in the record (`native`) and sent back with the tool call they preceded,
as the API requires. Usage: `input_tokens` excludes the cache, so the recorded prompt tokens are
input + cache writes + cache reads. The judge's JSON schema is asked as a forced tool call
(not allowed with thinking: then the schema is only checked afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from harness.backends.hosted import (
    HostedBackend,
    Query,
    Refused,
    Retriable,
    alternating,
    call_arguments,
    describe,
    kept_call_ids,
    native_of,
    sampling_fix,
    system_prompt,
    tool_spec,
)
from harness.episode.types import Message, Reply, ToolCall, ToolSchema
from harness.errors import ConfigError
from harness.extras import require

API = "anthropic"
EPHEMERAL = {"type": "ephemeral"}
VERDICT_TOOL = "verdict"
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
Cache = Literal["conversation", "prefix", "off"]


class AnthropicBackend(HostedBackend):
    name = "anthropic"
    RUNTIME_KEYS: ClassVar[frozenset[str]] = HostedBackend.RUNTIME_KEYS | {"cache"}
    """`cache` changes what a request costs, not what it answers."""
    api: ClassVar[str] = "Anthropic Messages"
    sampling_fields_supported: ClassVar[tuple[str, ...]] = ()
    """API version 2026-10-21 (the SDK 2.x default) refuses temperature, top_p and top_k outright."""

    def __init__(self, model: dict[str, Any], cache: Cache = "conversation", **settings: Any) -> None:
        super().__init__(model, **settings)
        if cache not in ("conversation", "prefix", "off"):
            raise ConfigError(f"backend.cache is {cache!r}: choose one of conversation, prefix, off")
        self.cache = cache

    def _open(self) -> Any:
        anthropic = require("anthropic", "anthropic", "backend=anthropic")
        return anthropic.AsyncAnthropic(**self.client_options)

    def _request(self, query: Query) -> dict[str, Any]:
        budget = self.model.thinking_budget
        request: dict[str, Any] = {
            "model": self.api_model,
            "max_tokens": query.sampling.max_tokens + (budget or 0),
        }
        system = system_prompt(query.messages)
        if system is not None:
            block: dict[str, Any] = {"type": "text", "text": system}
            if self.cache != "off":
                block["cache_control"] = EPHEMERAL
            request["system"] = [block]
        request["messages"] = to_anthropic(query.messages, cache_last=self.cache == "conversation")
        anthropic_tools = [anthropic_tool(tool) for tool in query.tools or []]
        if query.response_format is not None and not budget:
            schema = query.response_format.get("json_schema", {}).get("schema", {})
            anthropic_tools.append(
                {"name": VERDICT_TOOL, "description": "Give the verdict.", "input_schema": schema}
            )
            request["tool_choice"] = {"type": "tool", "name": VERDICT_TOOL}
        if anthropic_tools:
            if self.cache != "off":
                anthropic_tools[-1] = {**anthropic_tools[-1], "cache_control": EPHEMERAL}
            request["tools"] = anthropic_tools
        if budget:
            request["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if self.model.extra_body:
            request["extra_body"] = dict(self.model.extra_body)
        return request

    async def _send(self, request: dict[str, Any]) -> Any:
        import anthropic

        try:
            return await self.client.messages.create(**request)
        except anthropic.APIStatusError as error:
            message = _message(error)
            raise self._status_error(
                error.status_code,
                message,
                _param(message),
                context_exceeded="prompt is too long" in message.lower(),
                retriable=(408, 409, 429, 529),
            ) from error
        except (anthropic.APIConnectionError, anthropic.APIResponseValidationError, ValueError) as error:
            raise Retriable(describe(error)) from error

    def _reply(self, response: Any, latency_s: float) -> Reply:
        blocks = [block.model_dump(mode="json", exclude_none=True) for block in response.content]
        calls = [
            ToolCall(b["id"], b["name"], json.dumps(b.get("input", {})))
            for b in blocks
            if b["type"] == "tool_use" and b["name"] != VERDICT_TOOL
        ]
        verdicts = [b for b in blocks if b["type"] == "tool_use" and b["name"] == VERDICT_TOOL]
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        content = json.dumps(verdicts[0].get("input", {})) if verdicts else text or None
        usage = response.usage
        read = usage.cache_read_input_tokens or 0
        written = usage.cache_creation_input_tokens or 0
        details = getattr(usage, "output_tokens_details", None)
        thinking = any(b["type"] in ("thinking", "redacted_thinking") for b in blocks)
        return Reply(
            content=content,
            tool_calls=calls,
            prompt_tokens=usage.input_tokens + read + written,
            completion_tokens=usage.output_tokens,
            cached_tokens=read,
            cache_write_tokens=written,
            reasoning_tokens=getattr(details, "thinking_tokens", None),
            latency_s=latency_s,
            finish_reason=STOP_REASONS.get(response.stop_reason or "", response.stop_reason),
            served_model=getattr(response, "model", None) or None,
            native={"api": API, "content": blocks} if thinking else None,
        )

    def _fix(self, refusal: Refused) -> str:
        where = f"in the model preset {self.model.name!r}"
        said = refusal.message.lower()
        root = (refusal.param or "").split(".")[0]
        if root in self.model.extra_body:
            return f"{where} remove `extra_body.{root}` (the API refuses it)"
        if "thinking" in said or "budget_tokens" in said:
            return f"{where} set `thinking_budget` to null or a value the model accepts (>= 1024)"
        if (fix := sampling_fix(self.model, refusal.param)) is not None:
            return fix
        if "model" in said or refusal.status == 404:
            return self._model_fix()
        return f"{where} check sampling_fields, thinking_budget, extra_body"


def anthropic_tool(tool: ToolSchema) -> dict[str, Any]:
    return tool_spec(tool, "input_schema")


def to_anthropic(messages: Sequence[Message], cache_last: bool) -> list[dict[str, Any]]:
    """OpenAI-style messages as Anthropic's alternating user/assistant turns of content blocks."""
    turns = alternating((_turn(message) for message in messages if message["role"] != "system"), "content")
    if cache_last and turns:
        last = turns[-1]["content"]
        last[-1] = {**last[-1], "cache_control": EPHEMERAL}
    return turns


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message["role"] == "tool":
        result = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
        return "user", [{**result, "content": message.get("content") or "(no output)"}]
    if message["role"] == "assistant":
        return "assistant", _assistant_blocks(message)
    text = message.get("content") or ""
    return "user", [{"type": "text", "text": text}] if text else []


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    native = native_of(message, API)
    if native is not None:
        kept = kept_call_ids(message)
        return [
            dict(block) for block in native["content"] if block["type"] != "tool_use" or block["id"] in kept
        ]
    blocks: list[dict[str, Any]] = []
    if message.get("content"):
        blocks.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": call["function"]["name"],
                "input": call_arguments(call),
            }
        )
    return blocks


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return " ".join(inner["message"].split())[:300]
    return " ".join(str(error).split())[:300]


def _param(message: str) -> str | None:
    """The field a refusal names: Anthropic's messages open with `<field>: ...` or quote it in backticks."""
    head = message.split(":", 1)[0].strip()
    if head and " " not in head:
        return head
    quoted = message.split("`")
    return quoted[1] if len(quoted) > 2 else None
