"""`backend=gemini`: Gemini through the Gemini API and the official `google-genai` client.

Tools are function declarations (`parameters_json_schema`: τ-bench's JSON schemas as they are).
A function-call turn comes back with a *thought signature*; Gemini 3 refuses the next request of
the turn unless that part is sent back with its signature, so each reply's parts (signatures as
base64) are kept in the record (`native`) and sent back as they came. `thinking_budget` sets
`thinking_config.thinking_budget`. Usage: `prompt_token_count` includes the implicitly cached
`cached_content_token_count`; thinking tokens (`thoughts_token_count`) are billed as output and
recorded as completion and reasoning tokens. The judge's JSON schema is `response_json_schema`.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Sequence
from typing import Any, ClassVar

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
    sampling_values,
    system_prompt,
    tool_spec,
)
from harness.episode.types import Message, Reply, ToolCall, ToolSchema
from harness.errors import BackendUnavailable, RequestRejected
from harness.extras import require

API = "gemini"
OWN_ID = "harness_call_"
"""Prefix of the ids given to function calls the API returned without one (never sent back)."""
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


class GeminiBackend(HostedBackend):
    name = "gemini"
    api: ClassVar[str] = "Gemini API"

    def __init__(self, model: dict[str, Any], **settings: Any) -> None:
        super().__init__(model, **settings)
        self._ids = itertools.count()

    def _open(self) -> Any:
        genai = require("gemini", "google.genai", "backend=gemini")
        types = genai.types
        options: dict[str, Any] = {"timeout": int(self.timeout_s * 1000), "api_version": "v1beta"}
        if self.model.base_url:
            options["base_url"] = self.model.base_url
        return genai.Client(api_key=self.api_key, http_options=types.HttpOptions(**options))

    async def _close(self) -> None:
        await self.client.aio.aclose()

    def _request(self, query: Query) -> dict[str, Any]:
        config: dict[str, Any] = {
            **sampling_values(self.model, query.sampling),
            "max_output_tokens": query.sampling.max_tokens + (self.model.thinking_budget or 0),
        }
        system = system_prompt(query.messages)
        if system is not None:
            config["system_instruction"] = system
        if query.tools:
            config["tools"] = [{"function_declarations": [declaration(tool) for tool in query.tools]}]
            config["automatic_function_calling"] = {"disable": True}
        if self.model.thinking_budget is not None:
            config["thinking_config"] = {"thinking_budget": self.model.thinking_budget}
        if query.response_format is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = query.response_format.get("json_schema", {}).get("schema", {})
        config.update(self.model.extra_body)
        return {"model": self.api_model, "contents": to_gemini(query.messages), "config": config}

    async def _send(self, request: dict[str, Any]) -> Any:
        from google.genai import errors, types

        contents = [types.Content.model_validate(_bytes_in(c)) for c in request["contents"]]
        try:
            config = types.GenerateContentConfig(**request["config"])
        except ValueError as error:  # pydantic's ValidationError: a field the SDK does not know
            first = " ".join(str(error).split())[:200]
            raise RequestRejected(
                f"config error at `model.extra_body` of {self.model.name!r}: not a GenerateContentConfig: {first}"
            ) from None
        try:
            return await self.client.aio.models.generate_content(
                model=request["model"], contents=contents, config=config
            )
        except errors.APIError as error:
            message = " ".join(str(error.message or error).split())[:300]
            raise self._status_error(
                error.code,
                message,
                _param(message),
                context_exceeded="exceeds the maximum number of tokens" in message,
            ) from error
        except (ValueError, OSError) as error:
            raise Retriable(describe(error)) from error
        except Exception as error:  # httpx/aiohttp transport errors and timeouts
            if type(error).__module__.split(".")[0] in ("httpx", "aiohttp", "httpcore"):
                raise Retriable(describe(error)) from error
            raise

    def _reply(self, response: Any, latency_s: float) -> Reply:
        candidates = response.candidates or []
        if not candidates or candidates[0].content is None:
            raise BackendUnavailable(f"{self.api} returned no candidate: {str(response)[:200]!r}")
        candidate = candidates[0]
        parts = [_part_out(part) for part in candidate.content.parts or []]
        calls: list[ToolCall] = []
        call_ids: list[str] = []
        for part in parts:
            if "function_call" in part:
                call = part["function_call"]
                call_id = call.get("id") or f"{OWN_ID}{next(self._ids)}"
                calls.append(ToolCall(call_id, call["name"], json.dumps(call.get("args") or {})))
                call_ids.append(call_id)
        text = "".join(p.get("text", "") for p in parts if not p.get("thought") and "text" in p)
        usage = response.usage_metadata
        thoughts = (usage.thoughts_token_count or 0) if usage else 0
        finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason) or "")
        signed = any("thought_signature" in p or p.get("thought") for p in parts)
        return Reply(
            content=text or None,
            tool_calls=calls,
            prompt_tokens=usage.prompt_token_count if usage else None,
            completion_tokens=((usage.candidates_token_count or 0) + thoughts) if usage else None,
            cached_tokens=(usage.cached_content_token_count or 0) if usage else None,
            reasoning_tokens=thoughts if usage else None,
            latency_s=latency_s,
            finish_reason="tool_calls" if calls else FINISH.get(finish, finish.lower() or None),
            served_model=getattr(response, "model_version", None) or None,
            native={"api": API, "parts": parts, "call_ids": call_ids} if signed else None,
        )

    def _fix(self, refusal: Refused) -> str:
        where = f"in the model preset {self.model.name!r}"
        said = refusal.message.lower()
        if "thought_signature" in said:
            return "the function-call turn was sent back without its thought signature (a harness bug: report it)"
        if "thinking" in said:
            return f"{where} set `thinking_budget` to null or a value the model accepts"
        if (fix := sampling_fix(self.model, refusal.param)) is not None:
            return fix
        if refusal.status == 404 or "model" in said:
            return self._model_fix()
        return f"{where} check sampling_fields, thinking_budget, extra_body"


def declaration(tool: ToolSchema) -> dict[str, Any]:
    return tool_spec(tool, "parameters_json_schema")


def to_gemini(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """OpenAI-style messages as Gemini contents (`user` / `model`), signatures as base64 text."""
    return alternating((_turn(message) for message in messages if message["role"] != "system"), "parts")


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message["role"] == "tool":
        response = {
            "name": message.get("name") or "",
            "response": {"result": message.get("content") or ""},
        }
        call_id = message.get("tool_call_id") or ""
        if call_id and not call_id.startswith(OWN_ID):
            response["id"] = call_id
        return "user", [{"function_response": response}]
    if message["role"] == "assistant":
        return "model", _model_parts(message)
    return "user", [{"text": message.get("content") or ""}] if message.get("content") else []


def _model_parts(message: Message) -> list[dict[str, Any]]:
    native = native_of(message, API)
    if native is not None:
        kept = kept_call_ids(message)
        ids = iter(native.get("call_ids") or [])
        return [part for part in native["parts"] if "function_call" not in part or next(ids, None) in kept]
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"text": message["content"]})
    for call in message.get("tool_calls") or []:
        function_call: dict[str, Any] = {"name": call["function"]["name"], "args": call_arguments(call)}
        if not call["id"].startswith(OWN_ID):
            function_call["id"] = call["id"]
        parts.append({"function_call": function_call})
    return parts


def _part_out(part: Any) -> dict[str, Any]:
    """A reply part as JSON-safe data: text, thought, function_call, thought_signature (base64)."""
    out: dict[str, Any] = {}
    if part.text is not None:
        out["text"] = part.text
    if part.thought:
        out["thought"] = True
    if part.function_call is not None:
        call = {"name": part.function_call.name, "args": part.function_call.args or {}}
        if part.function_call.id:
            call["id"] = part.function_call.id
        out["function_call"] = call
    if part.thought_signature:
        out["thought_signature"] = base64.b64encode(part.thought_signature).decode()
    return out


def _bytes_in(content: dict[str, Any]) -> dict[str, Any]:
    parts = []
    for part in content["parts"]:
        if "thought_signature" in part:
            part = {**part, "thought_signature": base64.b64decode(part["thought_signature"])}
        parts.append(part)
    return {"role": content["role"], "parts": parts}


def _param(message: str) -> str | None:
    for name in ("temperature", "top_p", "seed", "thinking_budget", "max_output_tokens"):
        if name in message:
            return name
    return None
