"""Fake Anthropic Messages, Gemini and OpenAI Responses servers on 127.0.0.1, for the provider backends.

Each speaks its API's wire format (the official clients talk to it unchanged), refuses what the
real API refuses (the checks below name the rule and the API's own message), caches prompt
prefixes the way its provider does and reports usage in the provider's fields. Replies come from
a responder (`tests.oracle_responder.OracleResponder`: the oracle, driven through the real
request and response path). Token counts are len(json)/4 of what is counted.

- Anthropic (API version 2026-10-21): `temperature`, `top_p`, `top_k` refused as extra inputs;
  thinking needs budget >= 1024 < max_tokens and no forced tool; a tool-use turn must be answered by its tool results,
  and with thinking the last assistant turn must start with its (signed, unmodified) thinking block.
  Caching: prefixes up to each `cache_control` breakpoint (at least `min_cache_tokens`) are written
  (`cache_creation_input_tokens`) and read back later (`cache_read_input_tokens`); `input_tokens`
  excludes both.
- Gemini: a function-call turn since the last user text must carry the thought signature the
  server gave it; function responses must match the calls in number. Implicit caching of a prefix
  seen before (at least `min_cache_tokens`), counted inside `promptTokenCount`.
- Responses: no `seed`/`max_tokens`/`reasoning_effort` fields, no temperature/top_p for a reasoning
  model; with `store: false` a reasoning item must come back with its encrypted content; a function
  call the server returned after reasoning must come back with that reasoning item (the API checks
  this for calls sent with their `fc_` id; `strict_reasoning` checks it for every call of that
  response); every function_call_output needs its call. Prefix caching from 1024 tokens, in
  128-token steps.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from harness.episode.types import Message, Reply
from tests.helpers import local_http_server

Responder = Callable[[list[Message], list[Any] | None], Reply]
SECRET = b"fake-provider-secret"
OUTPUT_TOKENS = 7
THINKING_TOKENS = 5
THINKING_TEXT = "The policy says to act step by step."


def tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, sort_keys=True)) // 4)


def sign(*parts: Any) -> str:
    return hmac.new(SECRET, json.dumps(parts, sort_keys=True).encode(), hashlib.sha256).hexdigest()


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.status, self.body = status, body


@dataclass
class PrefixCache:
    """Prefix hashes seen before: the longest one a request starts with is read from the cache."""

    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def chain(units: list[Any]) -> list[tuple[str, int]]:
        running, total, out = hashlib.sha256(), 0, []
        for unit in units:
            running.update(json.dumps(unit, sort_keys=True).encode())
            total += tokens(unit)
            out.append((running.hexdigest(), total))
        return out

    def longest_hit(self, chain: list[tuple[str, int]], upto: int | None = None) -> int:
        with self.lock:
            hits = [n for i, (h, n) in enumerate(chain) if h in self.seen and (upto is None or i <= upto)]
        return max(hits, default=0)

    def add(self, entries: list[tuple[str, int]]) -> None:
        with self.lock:
            self.seen.update(h for h, _ in entries)


@dataclass
class FakeAPI:
    """What every fake records; a subclass answers `handle(path, body)`."""

    respond: Responder
    min_cache_tokens: int = 1024
    requests: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[tuple[int, str]] = field(default_factory=list)
    cache: PrefixCache = field(default_factory=PrefixCache)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=itertools.count)
    url: str = ""
    snapshot: str = "20260115"
    """Like the providers, a reply names the dated version that served it (`<model>-<snapshot>`)."""

    def served(self, model: str) -> str:
        return f"{model}-{self.snapshot}"

    def next_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}{next(self.ids):05d}"

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


# -- Anthropic Messages ---------------------------------------------------------------------------


def anthropic_error(message: str, status: int = 400) -> Refusal:
    kind = "invalid_request_error" if status == 400 else "not_found_error"
    return Refusal(status, {"type": "error", "error": {"type": kind, "message": message}})


ANTHROPIC_FIELDS = {
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "thinking", "metadata",
    "stop_sequences", "stream", "service_tier", "cache_control", "output_config",
}  # fmt: skip
"""API version 2026-10-21: no temperature, top_p or top_k (each is an extra input, even at its default)."""


@dataclass
class FakeAnthropic(FakeAPI):
    model: str = "fake-claude"

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not path.endswith("/v1/messages"):
            raise anthropic_error(f"Not found: {path}", 404)
        self.check(body)
        messages = self.chat_messages(body)
        reply = self.respond(messages, body.get("tools"))
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        content: list[dict[str, Any]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": sign(THINKING_TEXT)})
        forced = (body.get("tool_choice") or {}).get("type") == "tool"
        if forced:
            name = body["tool_choice"]["name"]
            content.append(
                {
                    "type": "tool_use",
                    "id": self.next_id("toolu_"),
                    "name": name,
                    "input": json.loads(reply.content or "{}"),
                }
            )
        else:
            if reply.content:
                content.append({"type": "text", "text": reply.content})
            for call in reply.tool_calls:
                content.append(
                    {
                        "type": "tool_use",
                        "id": self.next_id("toolu_"),
                        "name": call.name,
                        "input": json.loads(call.arguments),
                    }
                )
        read, written, total = self.caching(body)
        return 200, {
            "id": self.next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.served(body["model"]),
            "content": content,
            "stop_reason": "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": total - read - written,
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read,
                "output_tokens": OUTPUT_TOKENS + (THINKING_TOKENS if thinking else 0),
            },
        }

    def check(self, body: dict[str, Any]) -> None:
        for name in body:
            if name not in ANTHROPIC_FIELDS:
                raise anthropic_error(f"{name}: Extra inputs are not permitted")
        if "max_tokens" not in body:
            raise anthropic_error("max_tokens: Field required")
        if body.get("model") != self.model:
            raise anthropic_error(f"model: {body.get('model')}", 404)
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens", 0)
            if budget < 1024:
                raise anthropic_error(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if body["max_tokens"] <= budget:
                raise anthropic_error("`max_tokens` must be greater than `thinking.budget_tokens`.")
            if (body.get("tool_choice") or {}).get("type") in ("tool", "any"):
                raise anthropic_error("Thinking may not be enabled when `tool_choice` forces tool use.")
        marks = sum(1 for block in self.blocks(body) if "cache_control" in block)
        if marks > 4:
            raise anthropic_error(f"A maximum of 4 blocks with cache_control may be provided. Found {marks}.")
        messages = body.get("messages") or []
        if not messages:
            raise anthropic_error("messages: at least one message is required")
        for i, message in enumerate(messages):
            if message.get("role") not in ("user", "assistant"):
                raise anthropic_error(f'messages.{i}.role: Input should be "user" or "assistant"')
            content = message["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for block in blocks:
                if block["type"] == "text" and not block["text"]:
                    raise anthropic_error(f"messages.{i}: text content blocks must be non-empty")
            uses = [b["id"] for b in blocks if b["type"] == "tool_use"]
            if uses:
                following = messages[i + 1]["content"] if i + 1 < len(messages) else []
                answered = {
                    b.get("tool_use_id")
                    for b in following
                    if isinstance(b, dict) and b["type"] == "tool_result"
                }
                missing = [u for u in uses if u not in answered]
                if missing and i + 1 < len(messages):
                    raise anthropic_error(
                        f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                    )
            results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
            previous = messages[i - 1]["content"] if i else []
            issued = {b["id"] for b in previous if isinstance(b, dict) and b["type"] == "tool_use"}
            if any(r not in issued for r in results):
                raise anthropic_error(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
            for j, block in enumerate(blocks):
                if block["type"] == "thinking" and block.get("signature") != sign(block.get("thinking")):
                    raise anthropic_error(
                        f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )
        if thinking.get("type") == "enabled":
            assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
            if assistant:
                last = messages[assistant[-1]]["content"]
                last = [{"type": "text", "text": last}] if isinstance(last, str) else last
                if any(b["type"] == "tool_use" for b in last) and last[0]["type"] not in (
                    "thinking",
                    "redacted_thinking",
                ):
                    raise anthropic_error(
                        f"messages.{assistant[-1]}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                        f"`{last[0]['type']}`. When `thinking` is enabled, a final `assistant` message must start with a "
                        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
                    )

    @staticmethod
    def blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
        """The prompt in cache order: tools, system, then each message's content blocks."""
        system = body.get("system") or []
        out = list(body.get("tools") or []) + (
            [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        )
        for message in body.get("messages") or []:
            content = message["content"]
            out.extend([{"type": "text", "text": content}] if isinstance(content, str) else content)
        return out

    def caching(self, body: dict[str, Any]) -> tuple[int, int, int]:
        blocks = self.blocks(body)
        chain = PrefixCache.chain([{k: v for k, v in b.items() if k != "cache_control"} for b in blocks])
        total = chain[-1][1]
        marks = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if not marks:
            return 0, 0, total
        read = self.cache.longest_hit(chain, upto=marks[-1])
        read = read if read >= self.min_cache_tokens else 0
        cacheable = [chain[i] for i in marks if chain[i][1] >= self.min_cache_tokens]
        written = max(0, cacheable[-1][1] - read) if cacheable else 0
        self.cache.add(cacheable)
        return read, written, total

    @staticmethod
    def chat_messages(body: dict[str, Any]) -> list[Message]:
        system = body.get("system") or ""
        text = system if isinstance(system, str) else "".join(b["text"] for b in system)
        messages: list[Message] = [{"role": "system", "content": text}] if text else []
        for message in body["messages"]:
            content = message["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if message["role"] == "assistant":
                calls = [
                    {
                        "id": b["id"],
                        "type": "function",
                        "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
                    }
                    for b in blocks
                    if b["type"] == "tool_use"
                ]
                said = "".join(b["text"] for b in blocks if b["type"] == "text")
                messages.append(
                    {"role": "assistant", "content": said or None, **({"tool_calls": calls} if calls else {})}
                )
                continue
            for block in blocks:
                if block["type"] == "tool_result":
                    messages.append(
                        {"role": "tool", "tool_call_id": block["tool_use_id"], "content": block["content"]}
                    )
                elif block["type"] == "text":
                    messages.append({"role": "user", "content": block["text"]})
        return messages


# -- Gemini ---------------------------------------------------------------------------------------


def gemini_error(message: str, status: int = 400) -> Refusal:
    code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}.get(status, "UNKNOWN")
    return Refusal(status, {"error": {"code": status, "message": message, "status": code}})


def proto_field(message: dict[str, Any], camel: str) -> Any:
    """A field of a Google API JSON body: proto3 JSON accepts its lowerCamelCase and its snake_case name."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return message.get(camel, message.get(snake))


GEMINI_PATH = re.compile(r"/v1beta/models/([^/:]+):generateContent$")


@dataclass
class FakeGemini(FakeAPI):
    model: str = "fake-gemini"
    min_cache_tokens: int = 1024

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        match = GEMINI_PATH.search(path)
        if not match:
            raise gemini_error(f"Unknown path {path}", 404)
        if match.group(1) != self.model:
            raise gemini_error(f"models/{match.group(1)} is not found for API version v1beta", 404)
        self.check(body)
        messages = self.chat_messages(body)
        tools = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
        reply = self.respond(messages, tools or None)
        parts: list[dict[str, Any]] = []
        if reply.content:
            parts.append({"text": reply.content})
        for call in reply.tool_calls:
            parts.append({"functionCall": {"name": call.name, "args": json.loads(call.arguments)}})
        calls = [p for p in parts if "functionCall" in p]
        if calls:
            calls[0]["thoughtSignature"] = self.signature({"functionCall": calls[0]["functionCall"]})
        elif parts:
            parts[-1]["thoughtSignature"] = self.signature(parts[-1])
        units = [body.get("systemInstruction"), body.get("tools")] + [
            part for content in body["contents"] for part in content["parts"]
        ]
        chain = PrefixCache.chain(units)
        cached = self.cache.longest_hit(chain)
        cached = cached if cached >= self.min_cache_tokens else 0
        self.cache.add(chain)
        prompt = chain[-1][1]
        return 200, {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "cachedContentTokenCount": cached,
                "candidatesTokenCount": OUTPUT_TOKENS,
                "thoughtsTokenCount": THINKING_TOKENS,
                "totalTokenCount": prompt + OUTPUT_TOKENS + THINKING_TOKENS,
            },
            "modelVersion": self.served(self.model),
            "responseId": self.next_id("resp_"),
        }

    @staticmethod
    def signature(part: dict[str, Any]) -> str:
        import base64

        return base64.b64encode(sign("gemini", part).encode()).decode()

    def check(self, body: dict[str, Any]) -> None:
        contents = body.get("contents") or []
        if not contents:
            raise gemini_error("* GenerateContentRequest.contents: contents is not specified")
        thinking = proto_field(proto_field(body, "generationConfig") or {}, "thinkingConfig") or {}
        budget = proto_field(thinking, "thinkingBudget")
        if budget == 0:
            raise gemini_error("Budget 0 is invalid. This model only works in thinking mode.")
        texts = [
            i for i, c in enumerate(contents) if c["role"] == "user" and any("text" in p for p in c["parts"])
        ]
        turn_start = texts[-1] if texts else 0
        for i, content in enumerate(contents):
            calls = [p for p in content["parts"] if "functionCall" in p]
            if content["role"] == "model" and calls and i > turn_start:
                first = calls[0]
                if first.get("thoughtSignature") != self.signature({"functionCall": first["functionCall"]}):
                    position = content["parts"].index(first) + 1
                    raise gemini_error(
                        "Function call is missing a thought_signature in functionCall parts. This is required for "
                        "tools to work correctly, and missing thought_signature may lead to degraded model performance. "
                        f"Additional data, function call `default_api:{first['functionCall']['name']}` , position {position}. "
                        "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                    )
            responses = [p for p in content["parts"] if "functionResponse" in p]
            if responses:
                previous = contents[i - 1] if i else {"parts": []}
                issued = [p for p in previous["parts"] if "functionCall" in p]
                if len(issued) != len(responses):
                    raise gemini_error(
                        "Please ensure that the number of function response parts is equal to the number of "
                        "function call parts of the function call turn."
                    )

    @staticmethod
    def chat_messages(body: dict[str, Any]) -> list[Message]:
        system = "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        calls = itertools.count()
        pending: list[str] = []
        for content in body["contents"]:
            if content["role"] == "model":
                said = "".join(p.get("text", "") for p in content["parts"] if not p.get("thought"))
                tool_calls = []
                for part in content["parts"]:
                    if "functionCall" in part:
                        call_id = f"g{next(calls)}"
                        pending.append(call_id)
                        function = {
                            "name": part["functionCall"]["name"],
                            "arguments": json.dumps(part["functionCall"].get("args", {})),
                        }
                        tool_calls.append({"id": call_id, "type": "function", "function": function})
                messages.append(
                    {
                        "role": "assistant",
                        "content": said or None,
                        **({"tool_calls": tool_calls} if tool_calls else {}),
                    }
                )
                continue
            for part in content["parts"]:
                if "functionResponse" in part:
                    result = part["functionResponse"].get("response", {}).get("result", "")
                    messages.append(
                        {"role": "tool", "tool_call_id": pending.pop(0) if pending else "", "content": result}
                    )
                elif "text" in part:
                    messages.append({"role": "user", "content": part["text"]})
        return messages


# -- OpenAI Responses -----------------------------------------------------------------------------


def openai_error(message: str, param: str | None, code: str | None, status: int = 400) -> Refusal:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Refusal(status, {"error": error})


RESPONSES_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens",
    "reasoning", "store", "include", "text", "parallel_tool_calls", "metadata", "service_tier", "truncation",
    "previous_response_id", "stream", "user", "prompt_cache_key",
}  # fmt: skip
EFFORTS = ("minimal", "low", "medium", "high")


@dataclass
class FakeResponses(FakeAPI):
    model: str = "fake-gpt"
    reasoning_model: bool = True
    strict_reasoning: bool = True
    issued: dict[str, dict[str, str]] = field(default_factory=dict)
    """call_id -> the fc_ id and rs_ id of the response that returned it."""

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not path.endswith("/responses"):
            raise openai_error(f"Invalid URL (POST {path})", None, None, 404)
        self.check(body)
        messages = self.chat_messages(body)
        reply = self.respond(messages, body.get("tools"))
        output: list[dict[str, Any]] = []
        reasoning_id = None
        if self.reasoning_model:
            reasoning_id = self.next_id("rs_")
            output.append(
                {
                    "id": reasoning_id,
                    "type": "reasoning",
                    "summary": [],
                    "encrypted_content": sign("rs", reasoning_id),
                }
            )
        if reply.content:
            message = {"type": "output_text", "text": reply.content, "annotations": []}
            output.append(
                {
                    "id": self.next_id("msg_"),
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [message],
                }
            )
        for call in reply.tool_calls:
            call_id, item_id = self.next_id("call_"), self.next_id("fc_")
            output.append(
                {
                    "id": item_id,
                    "type": "function_call",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                }
            )
            with self.lock:
                self.issued[call_id] = {"fc": item_id, "rs": reasoning_id or ""}
        units = [body.get("instructions"), body.get("tools"), *body["input"]]
        chain = PrefixCache.chain(units)
        hit = self.cache.longest_hit(chain)
        cached = hit // 128 * 128 if hit >= self.min_cache_tokens else 0
        self.cache.add(chain)
        prompt = chain[-1][1]
        reasoning_tokens = THINKING_TOKENS if self.reasoning_model else 0
        return 200, {
            "id": self.next_id("resp_"),
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": self.served(body["model"]),
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "store": body.get("store", True),
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": cached},
                "output_tokens": OUTPUT_TOKENS + reasoning_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                "total_tokens": prompt + OUTPUT_TOKENS + reasoning_tokens,
            },
        }

    def check(self, body: dict[str, Any]) -> None:
        for name in body:
            if name not in RESPONSES_FIELDS:
                raise openai_error(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        if body.get("model") != self.model:
            raise openai_error(
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                None,
                "model_not_found",
                404,
            )
        if self.reasoning_model:
            for name in ("temperature", "top_p"):
                if name in body:
                    raise openai_error(
                        f"Unsupported parameter: '{name}' is not supported with this model.",
                        name,
                        "unsupported_parameter",
                    )
        effort = (body.get("reasoning") or {}).get("effort")
        if effort is not None and effort not in EFFORTS:
            raise openai_error(
                f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this model. "
                "Supported values are: 'minimal', 'low', 'medium', and 'high'.",
                "reasoning.effort", "unsupported_value",
            )  # fmt: skip
        stateless = body.get("store") is False
        items = body.get("input") or []
        present = {item.get("id") for item in items if isinstance(item, dict)}
        calls: set[str] = set()
        for index, item in enumerate(items):
            kind = item.get("type", "message")
            if kind == "reasoning":
                if stateless and "encrypted_content" not in item:
                    raise openai_error(
                        f"Item with id '{item['id']}' not found. Items are not persisted when `store` is set to false. "
                        "Try again with `store` set to true, or remove this item from your input.",
                        "input", None, 404,
                    )  # fmt: skip
                if item.get("encrypted_content") != sign("rs", item["id"]):
                    raise openai_error(
                        f"The encrypted content for item {item['id']} could not be verified.",
                        "input",
                        "invalid_encrypted_content",
                    )
            elif kind == "function_call":
                calls.add(item["call_id"])
                issued = self.issued.get(item["call_id"])
                needs = issued and issued["rs"] and (item.get("id") == issued["fc"] or self.strict_reasoning)
                if needs and issued["rs"] not in present:
                    raise openai_error(
                        f"Item '{item.get('id', issued['fc'])}' of type 'function_call' was provided without its "
                        f"required 'reasoning' item: '{issued['rs']}'.",
                        f"input[{index}]", None,
                    )  # fmt: skip
            elif kind == "function_call_output" and item["call_id"] not in calls:
                raise openai_error(
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    "input",
                    None,
                )

    @staticmethod
    def chat_messages(body: dict[str, Any]) -> list[Message]:
        messages: list[Message] = (
            [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
        )
        for item in body["input"]:
            kind = item.get("type", "message")
            if kind == "message":
                content = item["content"]
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                role = item["role"] if item["role"] != "developer" else "system"
                messages.append({"role": role, "content": text})
            elif kind == "function_call":
                call = {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
                last = messages[-1] if messages else None
                if last and last["role"] == "assistant" and not last.get("closed"):
                    last.setdefault("tool_calls", []).append(call)
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        return messages


# -- HTTP -----------------------------------------------------------------------------------------


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with api.lock:
                api.requests.append(body)
            try:
                status, payload = api.handle(self.path.split("?")[0], body)
            except Refusal as refusal:
                with api.lock:
                    api.refusals.append((refusal.status, json.dumps(refusal.body)))
                status, payload = refusal.status, refusal.body
            self._send(status, payload)

    return Handler


@contextmanager
def serve(api: FakeAPI) -> Iterator[FakeAPI]:
    """Serve `api` on a free port of 127.0.0.1 until the block ends (`api.url` is its base URL)."""
    with local_http_server(_handler(api)) as httpd:
        api.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield api
