"""Any OpenAI-compatible chat endpoint through the official `openai` client.

Retries 429, 5xx, timeouts, connection errors and unreadable responses with exponential
backoff; after the last retry the call raises `BackendUnavailable` (recorded as infra_error).
Tool calls are passed through exactly as the server sent them, malformed arguments included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from harness.backends.base import ChatModel, ConversationSpec
from harness.errors import (
    BackendUnavailable,
    ConfigError,
    ContextWindowExceeded,
    HarnessError,
    MissingDependencyError,
    validated,
)
from harness.types import Message, Reply, Role, Sampling, ToolCall, ToolSchema

log = logging.getLogger(__name__)

NO_KEY = "EMPTY"
"""Sent when `api_key_env` is null: local servers such as `vllm serve` accept any key."""


class APIModelSettings(BaseModel):
    """The `model` config group as this backend reads it (other keys, e.g. `gpus`, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    api_model: str | None = None
    base_url: str = Field(min_length=1)
    api_key_env: str | None = None


class _Retriable(Exception):
    pass


class OpenAIBackend:
    """`backend=openai`: one `AsyncOpenAI` client, shared by every conversation of the job."""

    name = "openai"
    plumbing_check = False

    def __init__(
        self,
        model: dict[str, Any],
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        check_endpoint: bool = True,
    ) -> None:
        self.model = validated(
            APIModelSettings,
            model,
            prefix="model.",
            hint="; backend=openai needs an API model preset with base_url, e.g. model=gpt-4o",
        )
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
        self.check_endpoint = check_endpoint
        self.client: Any = None
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Self:
        try:
            from openai import AsyncOpenAI
        except ImportError:
            raise MissingDependencyError(
                "backend=openai needs the openai client; install it with `pip install -e '.[openai]'`"
            ) from None
        env = self.model.api_key_env
        self.client = AsyncOpenAI(
            api_key=os.environ.get(env, "") if env else NO_KEY,
            base_url=self.model.base_url,
            timeout=self.timeout_s,
            max_retries=0,
        )
        self._slots = asyncio.Semaphore(self.max_concurrency)
        if self.check_endpoint:
            try:
                await self._check_endpoint()
            except BaseException:
                await self.client.close()
                self.client = None
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        return OpenAIChat(self)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1-based): exponential with full jitter."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema] | None,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,
    ) -> Reply:
        if self.client is None or self._slots is None:
            raise BackendUnavailable("the OpenAI-compatible backend is not started")
        request: dict[str, Any] = {
            "model": self.api_model,
            "messages": list(messages),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if tools:
            request["tools"] = list(tools)
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if response_format is not None:
            request["response_format"] = response_format
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff(attempt))
            async with self._slots:
                started = time.perf_counter()
                try:
                    response = await self._create(request)
                    return _reply(response, time.perf_counter() - started)
                except _Retriable as error:
                    last = str(error)
                    log.debug("retry %d/%d for %s: %s", attempt + 1, self.max_retries, self.api_model, last)
        raise BackendUnavailable(
            f"{self.model.base_url} ({self.api_model}) failed after {self.max_retries + 1} attempts: {last}"
        )

    async def _create(self, request: dict[str, Any]) -> Any:
        import openai

        try:
            response = await self.client.chat.completions.create(**request)
        except openai.APIStatusError as error:
            if error.status_code in (408, 409, 429) or error.status_code >= 500:
                raise _Retriable(_describe(error)) from error
            if error.status_code == 400 and _is_context_overflow(error):
                raise ContextWindowExceeded(_describe(error)) from error
            raise BackendUnavailable(
                f"{self.model.base_url} refused the request: {_describe(error)}"
            ) from error
        except (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError) as error:
            raise _Retriable(_describe(error)) from error
        if not getattr(response, "choices", None):
            raise _Retriable(f"response without choices: {str(response)[:200]!r}")
        return response


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    backend: OpenAIBackend

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        return await self.backend.complete(messages, tools, sampling)


def _reply(response: Any, latency_s: float) -> Reply:
    message = response.choices[0].message
    calls = [
        ToolCall(call.id, call.function.name, call.function.arguments or "")
        for call in (message.tool_calls or [])
        if getattr(call, "function", None) is not None
    ]
    usage = response.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return Reply(
        content=message.content,
        tool_calls=calls,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cached_tokens=getattr(details, "cached_tokens", None) if details else None,
        latency_s=latency_s,
    )


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    text = " ".join(str(error).split())[:300] or type(error).__name__
    return f"{type(error).__name__} {status}: {text}" if status else f"{type(error).__name__}: {text}"


def _is_context_overflow(error: Any) -> bool:
    text = str(error).lower()
    return "context_length_exceeded" in text or "maximum context length" in text or "context length" in text
