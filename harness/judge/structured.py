"""A chat model whose answer is held to a JSON schema where the backend can do it.

vLLM in-process: structured outputs (`StructuredOutputsParams(json=...)`); an OpenAI-compatible
endpoint: `response_format` of type `json_schema`; test backends (scripted) answer as written.
Every answer is validated afterwards all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import Backend, ChatModel, ConversationSpec
from harness.episode.types import Message, Reply, Sampling, ToolSchema


@dataclass(frozen=True, slots=True)
class _ResponseFormatChat:
    backend: Any
    response_format: dict[str, Any]

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        reply: Reply = await self.backend.complete(
            messages, tools, sampling, response_format=self.response_format
        )
        return reply


def prepare(backend: Backend) -> None:
    """Before the backend starts: an in-process vLLM engine that only writes JSON gets compact JSON.

    vLLM 0.32 reads `disable_any_whitespace` from the engine's config, not from the request; without
    it a weak model can fill its whole token budget with whitespace between two JSON tokens.
    """
    from harness.backends.vllm import VLLMBackend

    if isinstance(backend, VLLMBackend) and "structured_outputs_config" not in backend.engine_args:
        try:
            from vllm.config import StructuredOutputsConfig
        except ImportError:
            return  # the backend's start says how to install vLLM
        backend.engine_args["structured_outputs_config"] = StructuredOutputsConfig(
            backend="xgrammar", disable_any_whitespace=True
        )


def json_chat(backend: Backend, schema: dict[str, Any], spec: ConversationSpec) -> ChatModel:
    from harness.backends.hosted import HostedBackend
    from harness.backends.openai_compat import OpenAIBackend
    from harness.backends.vllm import VLLMBackend, VLLMChat

    if isinstance(backend, VLLMBackend):
        return VLLMChat(backend, {"json": schema})
    if isinstance(backend, OpenAIBackend | HostedBackend):
        # the hosted providers translate it: Anthropic a forced tool, Gemini response_json_schema,
        # Responses text.format
        # strict mode refuses maxLength and similar keywords; the answer is validated here instead
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": False},
        }
        return _ResponseFormatChat(backend, response_format)
    return backend.model_for("agent", spec)
