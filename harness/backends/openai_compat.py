"""Any OpenAI-compatible chat endpoint through the official `openai` client.

The request's shape comes from the model preset (`harness.backends.presets.ModelPreset`): which sampling
fields the model accepts, how the token limit is named, `reasoning_effort`, and extra fields sent
verbatim. Retries 429, 5xx, timeouts, connection errors and unreadable responses with exponential
backoff (429 from a longer first wait than the others; a `Retry-After` the server sends is
honoured instead); after the last retry the call raises `BackendUnavailable` (recorded as infra_error).
Every reply records its `finish_reason` and reasoning tokens; text that looks like a tool call the
server did not parse is a `parse_error`, as on `backend=vllm`.
A 400/404/422 that refuses the request itself (not one conversation's context) raises
`RequestRejected`, which stops the job. Tool calls are passed through exactly as the server sent
them, malformed arguments included.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import logging
import random
import re
import time
from typing import Any, ClassVar, Self

from harness.backends.hosted import Query, RemoteBackend
from harness.backends.presets import ModelPreset, model_preset
from harness.episode.types import Reply, Role, Sampling, ToolCall
from harness.errors import (
    BackendUnavailable,
    ConfigError,
    ContextWindowExceeded,
    HarnessError,
    RequestRejected,
)
from harness.extras import require

log = logging.getLogger(__name__)

PRESET_HINT = "; backend=openai needs an API model preset with base_url, e.g. model=gpt-4o"
REQUEST_ERROR_CODES = frozenset(
    {"unsupported_parameter", "unsupported_value", "unknown_parameter", "model_not_found", "invalid_tools"}
)
"""Error codes that describe the request's shape, whichever conversation it came from."""
TOOL_CALL_MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
"""Openings of a tool call as text (Hermes/Qwen, Mistral, Llama): an unparsed call when the server
returned it as content."""


def request_fields(preset: ModelPreset, sampling: Sampling) -> dict[str, Any]:
    """The request's fields besides messages and tools, as the preset shapes them."""
    values = {"temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
    fields: dict[str, Any] = {"model": preset.api_model or preset.name}
    for name in preset.sampling_fields:
        if values[name] is not None:
            fields[name] = values[name]
    fields[preset.token_limit_field] = sampling.max_tokens
    if preset.reasoning_effort is not None:
        fields["reasoning_effort"] = preset.reasoning_effort
    if preset.extra_body:
        fields["extra_body"] = copy.deepcopy(preset.extra_body)
    return fields


def request_shape(preset: ModelPreset, sampling: Sampling) -> dict[str, Any]:
    """What a role's requests carry, for job.json: the fields sent and the values left out."""
    fields = request_fields(preset, sampling)
    if "seed" in preset.sampling_fields:
        fields["seed"] = "derived per call"  # from the run seed, task, trial and step
    left_out: dict[str, Any] = {
        name: getattr(sampling, name)
        for name in ("temperature", "top_p")
        if name not in preset.sampling_fields
    }
    if "seed" not in preset.sampling_fields:
        left_out["seed"] = "derived per call"
    return {**fields, "not_sent": left_out} if left_out else fields


class _Retriable(Exception):
    def __init__(self, message: str, rate_limited: bool = False, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retry_after_s = retry_after_s


class OpenAIBackend(RemoteBackend):
    """`backend=openai`: one `AsyncOpenAI` client, shared by every conversation of the job."""

    name = "openai"
    RUNTIME_KEYS: ClassVar[frozenset[str]] = RemoteBackend.RUNTIME_KEYS | {
        "check_endpoint",
        "rate_limit_backoff_s",
        "retry_after_max_s",
    }
    """Config keys that change how requests are sent and retried, not what the model answers."""

    def __init__(
        self,
        model: dict[str, Any],
        check_endpoint: bool = True,
        rate_limit_backoff_s: float = 10.0,
        retry_after_max_s: float = 300.0,
        **settings: Any,
    ) -> None:
        super().__init__(model, **settings)
        if rate_limit_backoff_s < 0:
            raise ConfigError("backend: rate_limit_backoff_s must be >= 0")
        self.rate_limit_backoff_s = rate_limit_backoff_s
        self.retry_after_max_s = retry_after_max_s
        self.check_endpoint = check_endpoint

    def _preset(self, model: dict[str, Any]) -> ModelPreset:
        preset = model_preset(model, hint=PRESET_HINT)
        if not preset.base_url:
            raise ConfigError(f"config error at `model.base_url`: it is not set{PRESET_HINT}")
        return preset

    def request_shape(self, sampling: Sampling) -> dict[str, Any]:
        return request_shape(self.model, sampling)

    def _open(self) -> Any:
        AsyncOpenAI = require("openai", "openai", "backend=openai").AsyncOpenAI
        return AsyncOpenAI(**self.client_options)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self.check_endpoint:
            try:
                await self._check_endpoint()
            except BaseException:
                await self.release()
                raise
        return self

    async def _check_endpoint(self) -> None:
        import openai

        where = f"{self.model.base_url} ({self.model.name})"
        try:
            models = await self.client.models.list(timeout=min(self.timeout_s, 15.0))
        except openai.AuthenticationError:
            raise ConfigError(f"{where} rejected the API key from ${self.model.api_key_env}") from None
        except openai.NotFoundError:
            log.warning("%s does not list its models; not checking that %s exists", where, self.api_model)
            return
        except (openai.APIConnectionError, openai.APIStatusError) as error:
            raise HarnessError(f"cannot reach the endpoint {where}: {_describe(error)}") from None
        served = [m.id for m in models.data]
        if served and self.api_model not in served:
            raise ConfigError(f"{where} does not serve {self.api_model!r}; it lists {served[:10]}")

    def backoff(self, attempt: int, rate_limited: bool = False, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry `attempt` (1-based).

        The server's `Retry-After` when it sent one (up to `retry_after_max_s`); else exponential with
        jitter, from `rate_limit_backoff_s` after a 429 (a rate limit lasts longer than a 5xx blip).
        """
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.retry_after_max_s) + random.uniform(0, 0.1)
        first = max(self.rate_limit_backoff_s, self.backoff_s) if rate_limited else self.backoff_s
        ceiling = min(max(self.backoff_max_s, first), first * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _request(self, query: Query) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": list(query.messages),
            **request_fields(self.model, query.sampling),
        }
        if query.tools:
            request["tools"] = list(query.tools)
        if query.response_format is not None:
            request["response_format"] = query.response_format
        return request

    async def _complete(self, request: dict[str, Any], role: Role, first: bool) -> Reply:
        """`first` goes unused: `_create` takes any 400/404/422 before the role's first answer as the
        request shape's fault."""
        last: _Retriable | None = None
        for attempt in range(self.max_retries + 1):
            if last is not None:
                await asyncio.sleep(self.backoff(attempt, last.rate_limited, last.retry_after_s))
            async with self._slot():
                started = time.perf_counter()
                try:
                    response = await self._create(request, role)
                    self._accepted.add(role)
                    return _reply(response, time.perf_counter() - started, bool(request.get("tools")))
                except _Retriable as error:
                    last = error
                    log.debug("retry %d/%d for %s: %s", attempt + 1, self.max_retries, self.api_model, error)
        raise BackendUnavailable(
            f"{self.model.base_url} ({self.api_model}) failed after {self.max_retries + 1} attempts: {last}"
        )

    async def _create(self, request: dict[str, Any], role: Role) -> Any:
        import openai

        try:
            response = await self.client.chat.completions.create(**request)
        except openai.APIStatusError as error:
            if error.status_code in (408, 409, 429) or error.status_code >= 500:
                raise _Retriable(
                    _describe(error), error.status_code == 429, retry_after(error.response.headers)
                ) from error
            if error.status_code == 400 and _is_context_overflow(error):
                raise ContextWindowExceeded(_describe(error)) from error
            if _refuses_request(error, first_call=role not in self._accepted):
                self._rejected = self._rejection(error, role)
                raise RequestRejected(self._rejected) from None
            raise BackendUnavailable(
                f"{self.model.base_url} refused the request: {_describe(error)}"
            ) from error
        except (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError) as error:
            raise _Retriable(_describe(error)) from error
        if not getattr(response, "choices", None):
            raise _Retriable(f"response without choices: {str(response)[:200]!r}")
        return response

    def _rejection(self, error: Any, role: Role) -> str:
        """One line: what the endpoint refused, and which preset key to change."""
        said = _server_message(error)
        return (
            f"{self.model.base_url} refused {self.api_model}'s request as the {role} "
            f"(HTTP {error.status_code}): {said} -> {_fix(self.model, _parameter(error, said), error)}"
        )


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks to wait (`retry-after-ms`, `retry-after` in seconds or as a date), or None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            if name == "retry-after" and (when := email.utils.parsedate_tz(value)) is not None:
                return max(0.0, email.utils.mktime_tz(when) - time.time())
    return None


def unparsed_tool_call(content: str | None) -> str | None:
    """A parse error when `content` is a tool call the server left as text, else None."""
    text = (content or "").lstrip()
    if any(marker in text for marker in TOOL_CALL_MARKERS) or text.startswith(('{"name"', '{"type"')):
        return f"unparseable tool call (returned as text): {text[:200]!r}"
    return None


def _reply(response: Any, latency_s: float, offered_tools: bool = False) -> Reply:
    choice = response.choices[0]
    message = choice.message
    calls = [
        ToolCall(call.id, call.function.name, call.function.arguments or "")
        for call in (message.tool_calls or [])
        if getattr(call, "function", None) is not None
    ]
    usage = response.usage
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Reply(
        content=message.content,
        tool_calls=calls,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cached_tokens=getattr(prompt_details, "cached_tokens", None),
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None),
        latency_s=latency_s,
        parse_error=unparsed_tool_call(message.content) if offered_tools and not calls else None,
        finish_reason=getattr(choice, "finish_reason", None),
        served_model=_text_or_none(getattr(response, "model", None)),
        system_fingerprint=_text_or_none(getattr(response, "system_fingerprint", None)),
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    text = " ".join(str(error).split())[:300] or type(error).__name__
    return f"{type(error).__name__} {status}: {text}" if status else f"{type(error).__name__}: {text}"


def _is_context_overflow(error: Any) -> bool:
    text = str(error).lower()
    return "context_length_exceeded" in text or "maximum context length" in text or "context length" in text


def _refuses_request(error: Any, first_call: bool) -> bool:
    """Whether a client error is about the request's shape rather than one conversation.

    Before a role's first answer any 400/404/422 is taken as the shape's fault (every conversation
    sends the same fields); later only errors that say so (an unsupported parameter, an unknown model).
    """
    if error.status_code not in (400, 404, 422):
        return False
    if first_call or error.status_code == 404 or getattr(error, "code", None) in REQUEST_ERROR_CODES:
        return True
    text = _server_message(error).lower()
    return "unsupported parameter" in text or "unsupported value" in text


def _server_message(error: Any) -> str:
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = str(error)
    return " ".join(message.split())[:300]


def _parameter(error: Any, said: str) -> str | None:
    """The request field the endpoint named, from the error's `param` or its message."""
    param = getattr(error, "param", None)
    if isinstance(param, str) and param:
        return param
    quoted = re.search(r"[Uu]nsupported (?:parameter|value):? '([A-Za-z_.\[\]0-9]+)'", said)
    return quoted.group(1) if quoted else None


def _fix(preset: ModelPreset, param: str | None, error: Any) -> str:
    where = f"in the model preset {preset.name!r}"
    root = (param or "").split(".")[0].split("[")[0]
    if root in ("max_tokens", "max_completion_tokens"):
        other = "max_completion_tokens" if root == "max_tokens" else "max_tokens"
        return f"{where} set `token_limit_field: {other}`"
    if root in ("temperature", "top_p", "seed"):
        return f"{where} remove {root!r} from `sampling_fields` (the model accepts only its default)"
    if root == "reasoning_effort":
        return f"{where} set `reasoning_effort` to a value the model accepts, or null"
    if root in preset.extra_body:
        return f"{where} fix or remove `extra_body.{root}`"
    if root == "tools" or "tool" in _server_message(error).lower():
        return "the endpoint refuses the environment's tool schemas: check that the model supports tool calls"
    if root == "model" or error.status_code == 404:
        return f"{where} check `api_model` ({preset.api_model or preset.name!r}) and `base_url`"
    named = f" ({param!r})" if param else ""
    return f"{where} check the request fields{named}: sampling_fields, token_limit_field, reasoning_effort, extra_body"
