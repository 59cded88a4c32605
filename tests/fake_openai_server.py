"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for testing retries and bad replies.

Each chat request that carries `tools` (the agent) or a `response_format` (the judge) takes the next
step of the script; the last step repeats. Other requests (the simulated user) get a plain one-line answer.
Outages, for any chat request: a share of them fails at random (`failure_rate`), all of them fail
while the server is down (`go_down`, `come_back`), or those whose text holds `fail_text` fail.
The random share is drawn per request body and the number of times that body was sent, not in arrival
order, so which calls fail does not depend on how concurrent conversations interleave.
With `reasoning=True` it behaves like OpenAI's reasoning models: a request with `max_tokens`, or a
temperature or top_p other than 1, gets their HTTP 400, and usage reports reasoning tokens.
A step may send `Retry-After` with its error status, and answer like a reasoning model cut off while
thinking: `Step(content=None, finish_reason="length", reasoning_tokens=1024)`.
Like OpenAI, every completion names the dated snapshot that served it (`served_model`) and a
`system_fingerprint`; a test changes either mid-run to play a provider that changed its model.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import local_http_server

MODEL = "fake-model"
SNAPSHOT = "fake-model-2026-01-15"
"""The dated model version the server says answered a request for `MODEL`."""
FINGERPRINT = "fp_fake0001"
USER_LINE = "I would like to check on my order, please."
REASONING_TOKENS = 5
"""Reasoning tokens a reasoning-mode reply reports (part of its 7 completion tokens)."""


@dataclass
class Step:
    """One scripted answer: an HTTP status, a raw body, a delay, or a chat completion."""

    status: int = 200
    body: str | None = None
    delay_s: float = 0.0
    content: str | None = "Hello."
    tool_call: tuple[str, str] | None = None
    """(name, raw arguments text) of a tool call to return."""
    retry_after: str | None = None
    """The `Retry-After` header sent with an error status (seconds, or an HTTP date)."""
    finish_reason: str | None = None
    """None: `tool_calls` for a tool call, else `stop`."""
    reasoning_tokens: int | None = None
    """Reported in usage (and counted in completion tokens); None: the server's default."""


@dataclass
class FakeServer:
    url: str
    script: list[Step]
    agent_requests: list[dict[str, Any]] = field(default_factory=list)
    agent_times: list[float] = field(default_factory=list)
    user_requests: int = 0
    reasoning: bool = False
    bodies: list[dict[str, Any]] = field(default_factory=list)
    """Every chat request as received, the agent's and the user's, refused ones included."""
    in_flight: int = 0
    most_in_flight: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failure_rate: float = 0.0
    """Share of chat requests answered 500; each draw is a hash of `seed`, the body and its resend count."""
    fail_text: str | None = None
    """Chat requests whose body contains this text are answered 503."""
    seed: int = 0
    failed_requests: int = 0
    down_until: float = 0.0
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    """How many times each request body (by digest) has arrived."""

    refusals_left: int = 0
    served_model: str = SNAPSHOT
    system_fingerprint: str | None = FINGERPRINT

    def go_down(self, seconds: float = math.inf, requests: int | None = None) -> None:
        """Answer every chat request with 503 for `seconds`, or for the next `requests` requests."""
        if requests is None:
            self.down_until = time.monotonic() + seconds
        else:
            self.refusals_left = requests

    def come_back(self) -> None:
        self.down_until, self.refusals_left = 0.0, 0

    def outage_status(self, body: bytes) -> int | None:
        """The error status this request gets, or None when it is served."""
        with self.lock:
            if self.refusals_left > 0:
                self.refusals_left -= 1
                status: int | None = 503
            elif time.monotonic() < self.down_until or (
                self.fail_text is not None and self.fail_text.encode() in body
            ):
                status = 503
            elif self.failure_rate and self.draw(body) < self.failure_rate:
                status = 500
            else:
                return None
            self.failed_requests += 1
            return status

    def draw(self, body: bytes) -> float:
        """A uniform number in [0, 1) fixed by the seed, the body and how often the body was sent before."""
        digest = hashlib.sha256(body).hexdigest()
        self.sent[digest] += 1
        key = f"{self.seed}:{digest}:{self.sent[digest]}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64

    def served(self) -> dict[str, Any]:
        with self.lock:
            return {"served_model": self.served_model, "system_fingerprint": self.system_fingerprint}

    def next_step(self, request: dict[str, Any]) -> Step:
        with self.lock:
            self.agent_requests.append(request)
            self.agent_times.append(time.monotonic())
            index = min(len(self.agent_requests) - 1, len(self.script) - 1)
            return self.script[index]


def reasoning_refusal(request: dict[str, Any]) -> dict[str, Any] | None:
    """The error body OpenAI's reasoning models answer this request with, or None if they accept it."""
    if "max_tokens" in request:
        return {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    for name in ("temperature", "top_p"):
        if name in request and request[name] != 1:
            return {
                "message": f"Unsupported value: '{name}' does not support {request[name]} with this model. "
                "Only the default (1) value is supported.",
                "type": "invalid_request_error",
                "param": name,
                "code": "unsupported_value",
            }
    return None


def completion(
    content: str | None,
    tool_call: tuple[str, str] | None = None,
    reasoning: bool = False,
    finish_reason: str | None = None,
    reasoning_tokens: int | None = None,
    served_model: str = SNAPSHOT,
    system_fingerprint: str | None = FINGERPRINT,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_call:
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": tool_call[0], "arguments": tool_call[1]},
            }
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": served_model,
        "system_fingerprint": system_fingerprint,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_call else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7 + (reasoning_tokens or 0),
            "total_tokens": 107 + (reasoning_tokens or 0),
            "prompt_tokens_details": {"cached_tokens": 64},
            **(
                {"completion_tokens_details": {"reasoning_tokens": reasoning_tokens or REASONING_TOKENS}}
                if reasoning or reasoning_tokens is not None
                else {}
            ),
        },
    }


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: str, retry_after: str | None = None) -> None:
            try:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}))
            else:
                self._send(404, "{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if (status := server.outage_status(body)) is not None:
                self._send(status, '{"error": {"message": "unavailable"}}')
                return
            request = json.loads(body or b"{}")
            server.headers.append(dict(self.headers))
            with server.lock:
                server.bodies.append(request)
            refusal = reasoning_refusal(request) if server.reasoning else None
            if refusal is not None:
                self._send(400, json.dumps({"error": refusal}))
                return
            if not request.get("tools") and "response_format" not in request:
                server.user_requests += 1
                answer = completion(USER_LINE, reasoning=server.reasoning, **server.served())
                self._send(200, json.dumps(answer))
                return
            step = server.next_step(request)
            with server.lock:
                server.in_flight += 1
                server.most_in_flight = max(server.most_in_flight, server.in_flight)
            if step.delay_s:
                time.sleep(step.delay_s)
            with server.lock:
                server.in_flight -= 1
            if step.body is not None or step.status != 200:
                error = step.body if step.body is not None else '{"error": {"message": "x"}}'
                self._send(step.status, error, step.retry_after)
                return
            reply = completion(
                step.content,
                step.tool_call,
                server.reasoning,
                step.finish_reason,
                step.reasoning_tokens,
                **server.served(),
            )
            self._send(200, json.dumps(reply))

    return Handler


@contextmanager
def fake_openai_server(script: list[Step], reasoning: bool = False, **outages: Any) -> Iterator[FakeServer]:
    """Serve `script` on a free port of 127.0.0.1 until the block ends; `outages`: FakeServer fields."""
    with local_http_server() as httpd:
        server = FakeServer(
            url=f"http://127.0.0.1:{httpd.server_address[1]}/v1",
            script=script,
            reasoning=reasoning,
            **outages,
        )
        httpd.RequestHandlerClass = _handler(server)
        yield server
