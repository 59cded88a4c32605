"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for testing retries and bad replies.

Each chat request that carries `tools` (the agent) or a `response_format` (the judge) takes the next
step of the script; the last step repeats. Other requests (the simulated user) get a plain one-line answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"
USER_LINE = "I would like to check on my order, please."


@dataclass
class Step:
    """One scripted answer: an HTTP status, a raw body, a delay, or a chat completion."""

    status: int = 200
    body: str | None = None
    delay_s: float = 0.0
    content: str | None = "Hello."
    tool_call: tuple[str, str] | None = None
    """(name, raw arguments text) of a tool call to return."""


@dataclass
class FakeServer:
    url: str
    script: list[Step]
    agent_requests: list[dict[str, Any]] = field(default_factory=list)
    agent_times: list[float] = field(default_factory=list)
    user_requests: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, request: dict[str, Any]) -> Step:
        with self.lock:
            self.agent_requests.append(request)
            self.agent_times.append(time.monotonic())
            index = min(len(self.agent_requests) - 1, len(self.script) - 1)
            return self.script[index]


def completion(content: str | None, tool_call: tuple[str, str] | None = None) -> dict[str, Any]:
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
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_call else "stop"}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "total_tokens": 107,
            "prompt_tokens_details": {"cached_tokens": 64},
        },
    }


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: str) -> None:
            try:
                self.send_response(status)
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
            request = json.loads(self.rfile.read(length) or b"{}")
            server.headers.append(dict(self.headers))
            if not request.get("tools") and "response_format" not in request:
                server.user_requests += 1
                self._send(200, json.dumps(completion(USER_LINE)))
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
                self._send(step.status, step.body if step.body is not None else '{"error": {"message": "x"}}')
                return
            self._send(200, json.dumps(completion(step.content, step.tool_call)))

    return Handler


@contextmanager
def fake_openai_server(script: list[Step]) -> Iterator[FakeServer]:
    """Serve `script` on a free port of 127.0.0.1 until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    server = FakeServer(url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", script=script)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
