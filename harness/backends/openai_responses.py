"""`backend=openai_responses`: OpenAI models through the Responses API and the official `openai` client.

Requests are stateless (`store: false`) and ask for `reasoning.encrypted_content`, so a
reasoning model's reasoning items come back encrypted; each reply's output items are kept in the
record (`native`) and sent back on the next turn, which the API requires for a function call that
followed reasoning. `reasoning_effort` in the preset is sent as `reasoning.effort`; the token
limit is `max_output_tokens` (it counts reasoning tokens). There is no `seed`. Usage: input tokens
include the cached ones (`input_tokens_details.cached_tokens`), output tokens the reasoning ones.
The judge's JSON schema is `text.format`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from harness.backends.hosted import (
    HostedBackend,
    Query,
    Refused,
    Retriable,
    describe,
    kept_call_ids,
    native_of,
    sampling_fix,
    sampling_values,
    system_prompt,
    tool_spec,
)
from harness.episode.types import Message, Reply, ToolCall, ToolSchema
from harness.extras import require

API = "openai_responses"


class ResponsesBackend(HostedBackend):
    name = "openai_responses"
    api: ClassVar[str] = "OpenAI Responses"
    sampling_fields_supported: ClassVar[tuple[str, ...]] = ("temperature", "top_p")

    def _open(self) -> Any:
        AsyncOpenAI = require("openai", "openai", "backend=openai_responses").AsyncOpenAI
        return AsyncOpenAI(**self.client_options)

    def _request(self, query: Query) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.api_model,
            **{k: v for k, v in sampling_values(self.model, query.sampling).items() if k != "seed"},
            "max_output_tokens": query.sampling.max_tokens,
            "store": False,
            "include": ["reasoning.encrypted_content"],
        }
        if self.model.reasoning_effort is not None:
            request["reasoning"] = {"effort": self.model.reasoning_effort}
        system = system_prompt(query.messages)
        if system is not None:
            request["instructions"] = system
        request["input"] = to_items(query.messages)
        if query.tools:
            request["tools"] = [function_tool(tool) for tool in query.tools]
        if query.response_format is not None:
            spec = query.response_format.get("json_schema", {})
            request["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": spec.get("name", "verdict"),
                    "schema": spec.get("schema", {}),
                    "strict": bool(spec.get("strict", False)),
                }
            }
        if self.model.extra_body:
            request["extra_body"] = dict(self.model.extra_body)
        return request

    async def _send(self, request: dict[str, Any]) -> Any:
        import openai

        try:
            return await self.client.responses.create(**request)
        except openai.APIStatusError as error:
            message = _message(error)
            body = error.body if isinstance(error.body, dict) else {}
            raise self._status_error(
                error.status_code,
                message,
                body.get("param") if isinstance(body.get("param"), str) else None,
                context_exceeded="context" in message.lower() and "window" in message.lower(),
            ) from error
        except (openai.APIConnectionError, openai.APIResponseValidationError, ValueError) as error:
            raise Retriable(describe(error)) from error

    def _reply(self, response: Any, latency_s: float) -> Reply:
        items = [item.model_dump(mode="json", exclude_none=True) for item in response.output]
        calls = [
            ToolCall(item["call_id"], item["name"], item.get("arguments") or "")
            for item in items
            if item["type"] == "function_call"
        ]
        text = "".join(
            part.get("text", "")
            for item in items
            if item["type"] == "message"
            for part in item.get("content", [])
            if part.get("type") == "output_text"
        )
        usage = response.usage
        incomplete = getattr(response, "incomplete_details", None)
        if response.status == "incomplete" and getattr(incomplete, "reason", None) == "max_output_tokens":
            finish = "length"
        else:
            finish = "tool_calls" if calls else "stop"
        reasoning = any(item["type"] == "reasoning" for item in items)
        return Reply(
            content=text or None,
            tool_calls=calls,
            prompt_tokens=usage.input_tokens if usage else None,
            completion_tokens=usage.output_tokens if usage else None,
            cached_tokens=getattr(usage.input_tokens_details, "cached_tokens", None) if usage else None,
            reasoning_tokens=getattr(usage.output_tokens_details, "reasoning_tokens", None)
            if usage
            else None,
            latency_s=latency_s,
            finish_reason=finish,
            served_model=getattr(response, "model", None) or None,
            native={"api": API, "output": items} if reasoning else None,
        )

    def _fix(self, refusal: Refused) -> str:
        where = f"in the model preset {self.model.name!r}"
        root = (refusal.param or "").split(".")[0]
        if (fix := sampling_fix(self.model, root)) is not None:
            return fix
        if root == "reasoning":
            return f"{where} set `reasoning_effort` to a value the model accepts, or null"
        if "reasoning" in refusal.message.lower():
            return "a reasoning item was not sent back with the turn it belongs to (a harness bug: report it)"
        if root in self.model.extra_body:
            return f"{where} fix or remove `extra_body.{root}`"
        if root == "model" or refusal.status == 404:
            return self._model_fix()
        return f"{where} check sampling_fields, reasoning_effort, extra_body"


def function_tool(tool: ToolSchema) -> dict[str, Any]:
    return {"type": "function", **tool_spec(tool, "parameters"), "strict": False}


def to_items(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """OpenAI-style chat messages as Responses input items; a native reply goes back item by item."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            output = message.get("content") or ""
            items.append(
                {"type": "function_call_output", "call_id": message["tool_call_id"], "output": output}
            )
        elif role == "assistant":
            native = native_of(message, API)
            if native is not None:
                kept = kept_call_ids(message)
                items.extend(
                    {k: v for k, v in item.items() if k != "status"}
                    for item in native["output"]
                    if item["type"] != "function_call" or item["call_id"] in kept
                )
                continue
            if message.get("content"):
                items.append({"role": "assistant", "content": message["content"]})
            for call in message.get("tool_calls") or []:
                function = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function["arguments"] or "{}",
                    }
                )
        else:
            items.append({"role": role, "content": message.get("content") or ""})
    return items


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join((message if isinstance(message, str) and message else str(error)).split())[:300]
