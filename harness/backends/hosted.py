"""What every backend behind an HTTP API shares, and what every hosted provider API shares.

`RemoteBackend`: a client per job, bounded concurrency, the first request per role going alone and
the refusal of every later request once the endpoint refused the request's shape; `backend=openai`
(`openai_compat`) and the provider backends build on it. One backend per provider API
(`anthropic`, `gemini`, `openai_responses`), each a `HostedBackend` with that API's request and
reply translation. Retries, backoff and the one-line refusal that stops the job are the same for
all providers, so they live here once; what differs (request shape, native state carried between
turns, usage fields, error bodies) lives in the provider's module. A provider's `_send` raises
`Retriable` (429, 5xx, timeouts, connection errors), `ContextWindowExceeded`, `Refused` (a 4xx
about the request) or `BackendUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from harness.backends.base import BackendContext, ChatModel, ConversationSpec
from harness.backends.presets import ModelPreset, model_preset
from harness.episode.types import Message, Reply, Role, Sampling, ToolSchema
from harness.errors import BackendUnavailable, ConfigError, ContextWindowExceeded, RequestRejected

log = logging.getLogger(__name__)

SHAPE_WORDS = (
    "unsupported",
    "unknown parameter",
    "cannot both be specified",
    "not supported",
    "invalid value",
)
"""Words of a refusal that is about the request's shape, whichever conversation sent it."""
NO_KEY = "EMPTY"
"""Sent when `api_key_env` is null: local servers such as `vllm serve` accept any key."""


class Retriable(Exception):
    pass


class Refused(Exception):
    """A client error (4xx) about the request: `param` is the request field it names, if any."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, " ".join(message.split())[:300], param

    @property
    def about_shape(self) -> bool:
        return self.status == 404 or any(word in self.message.lower() for word in SHAPE_WORDS)


@dataclass(frozen=True, slots=True)
class Query:
    """What one call asks of the model: the conversation so far, the tools it may call, how to
    sample, and the JSON schema its answer must follow (a judge's `response_format`), if any."""

    messages: Sequence[Message]
    tools: Sequence[ToolSchema] | None
    sampling: Sampling
    response_format: dict[str, Any] | None = None


class RemoteBackend(BackendContext):
    """A model behind an HTTP API: one SDK client per job, at most `max_concurrency` requests in
    flight, and each role's first request sent alone, so that a refused request shape costs one
    request, not one per conversation in flight. A subclass checks its preset (`_preset`), opens
    the client (`_open`), builds requests (`_request`) and sends them with its retries (`_complete`)."""

    name = "remote"
    RUNTIME_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"max_concurrency", "timeout_s", "max_retries", "backoff_s", "backoff_max_s"}
    )
    """Config keys that change how requests are sent and retried, not what the model answers."""
    plumbing_check = False

    def __init__(
        self,
        model: dict[str, Any],
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.model: ModelPreset = self._preset(model)
        if max_concurrency < 1 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ConfigError(
                "backend: max_concurrency must be >= 1, timeout_s > 0, max_retries >= 0, backoff_s >= 0"
            )
        env = self.model.api_key_env
        if env and not os.environ.get(env):
            raise ConfigError(
                f"the API key for {self.model.name} is read from the environment variable {env}, which is not set"
            )
        self.api_model = self.model.api_model or self.model.name
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.client: Any = None
        self._slots: asyncio.Semaphore | None = None
        self._accepted: set[Role] = set()
        """Roles whose requests the endpoint has answered: their shape is known to be good."""
        self._rejected: str | None = None
        """Why the endpoint refused a request's shape: every later request of the job is refused too."""
        self._first_answer: dict[Role, asyncio.Event] = {}
        """Per role, set once its first request is answered: until then that request goes alone."""

    @property
    def api_key(self) -> str:
        env = self.model.api_key_env
        return os.environ.get(env, "") if env else NO_KEY

    @property
    def client_options(self) -> dict[str, Any]:
        """The SDK client's settings: its own retries are off, the backend's apply."""
        return {
            "api_key": self.api_key,
            "base_url": self.model.base_url,
            "timeout": self.timeout_s,
            "max_retries": 0,
        }

    # -- subclass hooks ------------------------------------------------------------------------
    def _preset(self, model: dict[str, Any]) -> ModelPreset:
        """The model preset, checked for what this backend needs of it."""
        return model_preset(model, hint=f"; backend={self.name} needs an API model preset")

    def _open(self) -> Any:
        raise NotImplementedError

    async def _close(self) -> None:
        await self.client.close()

    def _request(self, query: Query) -> dict[str, Any]:
        raise NotImplementedError

    async def _complete(self, request: dict[str, Any], role: Role, first: bool) -> Reply:
        """Send `request` (retrying as the API needs) in `_slot()`s; `first`: the role's first request."""
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self.client = self._open()
        self._slots = asyncio.Semaphore(self.max_concurrency)
        return self

    async def release(self) -> None:
        if self.client is not None:
            await self._close()
            self.client = None

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        return RemoteChat(self, role)

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema] | None,
        sampling: Sampling,
        role: Role = "agent",
        response_format: dict[str, Any] | None = None,
    ) -> Reply:
        if self.client is None or self._slots is None:
            raise BackendUnavailable(f"backend={self.name} is not started")
        request = self._request(Query(messages, tools, sampling, response_format))
        first = await self._first_of(role)
        try:
            return await self._complete(request, role, first)
        finally:
            if first:
                self._first_answer[role].set()

    async def _first_of(self, role: Role) -> bool:
        """Whether this is the role's first request; later ones wait until it is answered."""
        if role in self._accepted:
            return False
        answered = self._first_answer.get(role)
        if answered is None:
            self._first_answer[role] = asyncio.Event()
            return True
        await answered.wait()
        return False

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A place among the requests in flight; refused once the endpoint refused the request shape."""
        assert self._slots is not None
        async with self._slots:
            if self._rejected is not None:
                raise RequestRejected(self._rejected)
            yield


@dataclass(frozen=True, slots=True)
class RemoteChat:
    backend: RemoteBackend
    role: Role = "agent"

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        return await self.backend.complete(messages, tools, sampling, self.role)


class HostedBackend(RemoteBackend):
    """Base of the provider backends; a subclass sets `name`, `api` and implements the hooks."""

    name = "hosted"
    api: ClassVar[str] = "a provider API"
    sampling_fields_supported: ClassVar[tuple[str, ...]] = ("temperature", "top_p", "seed")

    def _preset(self, model: dict[str, Any]) -> ModelPreset:
        preset = super()._preset(model)
        unsupported = [f for f in preset.sampling_fields if f not in self.sampling_fields_supported]
        if unsupported:
            raise ConfigError(
                f"config error at `model.sampling_fields`: {self.api} has no {unsupported}; "
                f"choose from {list(self.sampling_fields_supported)}"
            )
        return preset

    # -- provider hooks ------------------------------------------------------------------------
    async def _send(self, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _reply(self, response: Any, latency_s: float) -> Reply:
        raise NotImplementedError

    def _fix(self, refusal: Refused) -> str:
        """Which preset key to change for this refusal."""
        return f"in the model preset {self.model.name!r} check the request fields"

    def request_shape(self, sampling: Sampling) -> dict[str, Any]:
        """What a role's requests carry besides the conversation and tools, for job.json."""
        request = self._request(Query([{"role": "user", "content": ""}], None, sampling))
        shape = {k: v for k, v in request.items() if k not in ("messages", "contents", "input", "system")}
        left_out = {
            name: getattr(sampling, name)
            for name in ("temperature", "top_p")
            if name not in self.model.sampling_fields
        }
        if "seed" in self.model.sampling_fields:
            shape["seed"] = "derived per call"  # from the run seed, task, trial and step
        else:
            left_out["seed"] = "derived per call"
        return {"api": self.api, **shape, "not_sent": left_out} if left_out else {"api": self.api, **shape}

    # -- retries and refusals ------------------------------------------------------------------
    def _status_error(
        self,
        status: int,
        message: str,
        param: str | None,
        context_exceeded: bool,
        retriable: tuple[int, ...] = (408, 409, 429),
    ) -> Exception:
        """What `_send` raises for an HTTP error the API answered: `context_exceeded` when its 400
        says the conversation is longer than the model's context window."""
        if status in retriable or status >= 500:
            return Retriable(f"HTTP {status}: {message}")
        if status == 400 and context_exceeded:
            return ContextWindowExceeded(message)
        if status in (400, 404, 422):
            return Refused(status, message, param)
        return BackendUnavailable(f"{self.api} refused the request: HTTP {status}: {message}")

    def _model_fix(self) -> str:
        return (
            f"in the model preset {self.model.name!r} check `api_model` ({self.api_model!r}) and `base_url`"
        )

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _complete(self, request: dict[str, Any], role: Role, first: bool) -> Reply:
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff(attempt))
            async with self._slot():
                started = time.perf_counter()
                try:
                    response = await self._send(request)
                except Retriable as error:
                    last = str(error)
                    log.debug("retry %d/%d for %s: %s", attempt + 1, self.max_retries, self.api_model, last)
                    continue
                except Refused as refusal:
                    if first or refusal.about_shape:
                        self._rejected = (
                            f"{self.api} refused {self.api_model}'s request as the {role} "
                            f"(HTTP {refusal.status}): {refusal.message} -> {self._fix(refusal)}"
                        )
                        raise RequestRejected(self._rejected) from None
                    raise BackendUnavailable(
                        f"{self.api} refused the request (HTTP {refusal.status}): {refusal.message}"
                    ) from None
                self._accepted.add(role)
                return self._reply(response, time.perf_counter() - started)
        raise BackendUnavailable(
            f"{self.api} ({self.api_model}) failed after {self.max_retries + 1} attempts: {last}"
        )


def tool_spec(tool: ToolSchema, schema_key: str) -> dict[str, Any]:
    """A tool's name, description and parameters' JSON schema, the schema under `schema_key`."""
    function = tool.get("function", tool)
    return {
        "name": function["name"],
        "description": function.get("description", ""),
        schema_key: function.get("parameters") or {"type": "object", "properties": {}},
    }


def sampling_values(preset: ModelPreset, sampling: Sampling) -> dict[str, Any]:
    """The sampling fields the preset sends, under their common names."""
    values = {"temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
    return {name: values[name] for name in preset.sampling_fields if values[name] is not None}


def system_prompt(messages: Sequence[Message]) -> str | None:
    """The system messages as one text, for an API that takes it apart from the turns; None if none."""
    system = [m["content"] for m in messages if m["role"] == "system" and m.get("content")]
    return "\n\n".join(system) if system else None


def alternating(turns: Iterable[tuple[str, list[dict[str, Any]]]], key: str) -> list[dict[str, Any]]:
    """`{"role": role, key: items}` turns where a role's consecutive items join one turn and a turn
    without items is left out: the alternation of user and model turns an API requires."""
    joined: list[dict[str, Any]] = []
    for role, items in turns:
        if not items:
            continue
        if joined and joined[-1]["role"] == role:
            joined[-1][key].extend(items)
        else:
            joined.append({"role": role, key: items})
    return joined


def call_arguments(call: dict[str, Any]) -> Any:
    """A recorded tool call's arguments as JSON data; `{}` when they are not JSON."""
    try:
        return json.loads(call["function"]["arguments"] or "{}")
    except json.JSONDecodeError:
        return {}


def native_of(message: Message, api: str) -> dict[str, Any] | None:
    """The message's native form when this API wrote it (another backend's is rebuilt from the text)."""
    native = message.get("native")
    return native if isinstance(native, dict) and native.get("api") == api else None


def kept_call_ids(message: Message) -> set[str]:
    """Ids of the tool calls the loop kept (it runs only the first); the native form drops the rest."""
    return {call["id"] for call in message.get("tool_calls") or []}


def describe(error: BaseException) -> str:
    text = " ".join(str(error).split())[:300] or type(error).__name__
    return f"{type(error).__name__}: {text}"


def sampling_fix(preset: ModelPreset, param: str | None) -> str | None:
    """The fix for a refused sampling field, or None if the field is not one."""
    if param in ("temperature", "top_p", "seed"):
        return (
            f"in the model preset {preset.name!r} remove {param!r} from `sampling_fields` "
            "(the model refuses it, or refuses it together with another)"
        )
    return None
