"""vLLM in-process: one async engine per job serves every conversation (continuous batching).

Each call is shaped as `vllm serve` shapes an OpenAI chat request: one `ChatCompletionRequest`
gives the chat-template arguments, the sampling parameters (the model's `generation_config`
defaults under the values the harness sends) and the tool parser's adjustments, so
`backend=vllm` samples like `backend=openai` against `vllm serve` (docs/backends.md, *Sampling*).
vLLM's own renderer renders the prompt; the preset's reasoning parser, then its tool parser,
read the reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import ValidationError

from harness.backends.base import Backend, BackendContext, ChatModel, ConversationSpec
from harness.backends.presets import ModelPreset, model_preset
from harness.episode.types import Message, Reply, Role, Sampling, ToolCall, ToolSchema
from harness.errors import (
    BackendUnavailable,
    ConfigError,
    ContextWindowExceeded,
    EngineDied,
    HarnessError,
    ModelInputRejected,
)

log = logging.getLogger(__name__)

JSON_ONLY_PARSERS = frozenset({"llama3_json", "llama4_json"})
"""Parsers whose tool calls are bare JSON: a reply opening with `{` is an attempted call."""

PRESET_HINT = "; backend=vllm needs a model preset with path and tool_parser, e.g. model=qwen2.5-7b"

SHARED_GPU_MEMORY_LIMIT = 0.95
"""Most of a GPU two engines may claim together: CUDA contexts and the first engine's
allocations outside its budget take the rest, and vLLM checks free memory at startup."""

PROBE_TOOL = {
    "type": "function",
    "function": {"name": "probe", "description": "", "parameters": {"type": "object", "properties": {}}},
}


TIME_LIMIT_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
"""SLURM's `--signal` (submitit: USR2 before the time limit) goes to every process of the job. The
harness's own handler requeues; vLLM's engine-core and TP workers handle only SIGTERM/SIGINT, so
USR2 would kill them (and count as an engine death). They start with these ignored."""


@contextmanager
def signals_ignored_by_children(signals: Sequence[signal.Signals]) -> Iterator[None]:
    """Ignore `signals` while child processes start: an ignored signal stays ignored across exec,
    so the spawned engine processes ignore it; this process gets its own handlers back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).exists()


def _load_chat_template(value: str | None) -> str | None:
    if value is None or "{{" in value or "{%" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"model.chat_template={value!r} is neither a Jinja template nor an existing file")
    return path.read_text()


def default_cache_root() -> Path:
    """A compile-cache root of this job's own on the node's local disk.

    vLLM's torch.compile cache is not safe for jobs writing it at once (array jobs on one node);
    one root per job (per SLURM array task, else per process) keeps them apart, and a requeued
    job finds its own cache again.
    """
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    else:
        job = os.environ.get("SLURM_JOB_ID") or f"pid{os.getpid()}"
    return Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / f"tau-emotion-vllm-{job}"


def engine_environment(cache_root: str | None, batch_invariant: bool) -> dict[str, str]:
    """Environment vLLM reads when its engine (and its workers) start.

    Workers are spawned, never forked: the job's process already runs an event loop and threads.
    An explicit `VLLM_CACHE_ROOT` in the environment wins over the per-job default.
    """
    env = {
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        "VLLM_CACHE_ROOT": cache_root or os.environ.get("VLLM_CACHE_ROOT") or str(default_cache_root()),
    }
    if batch_invariant:
        env["VLLM_BATCH_INVARIANT"] = "1"
    return env


def mistral_messages(messages: Sequence[Message]) -> list[Message]:
    """The conversation as mistral-common accepts it.

    An assistant message holds text or tool calls, never both and never neither: a message with
    both keeps its calls (the text stays in the record), an empty one becomes a single space
    (which renders as an empty turn). Tool-call ids become the 9 letters/digits mistral-common
    requires, the same in the assistant's call and the tool's answer.
    """
    out: list[Message] = []
    for message in messages:
        message = dict(message)
        if message["role"] == "assistant":
            if message.get("tool_calls"):
                message["content"] = None
                message["tool_calls"] = [
                    {**call, "id": _mistral_call_id(call.get("id"))} for call in message["tool_calls"]
                ]
            elif not message.get("content"):
                message["content"] = " "
        elif message["role"] == "tool" and "tool_call_id" in message:
            message["tool_call_id"] = _mistral_call_id(message["tool_call_id"])
        out.append(message)
    return out


def _mistral_call_id(call_id: str | None) -> str:
    letters = re.sub(r"[^a-zA-Z0-9]", "", call_id or "")
    return letters[-9:].rjust(9, "0")


class VLLMBackend(BackendContext):
    """`backend=vllm`: builds `vllm.AsyncLLM` in `__aenter__` from the `model` preset."""

    name = "vllm"
    RUNTIME_KEYS = frozenset(
        {
            "job_concurrency", "max_num_seqs", "max_num_batched_tokens", "renderer_num_workers", "cache_root",
            "gpu_memory_utilization", "kv_cache_memory_bytes", "enable_prefix_caching", "enforce_eager",
        }
    )  # fmt: skip
    """Config keys that change how the engine batches, caches and uses memory, not what it answers."""
    plumbing_check = False

    def __init__(
        self,
        model: dict[str, Any],
        gpu_memory_utilization: float = 0.9,
        kv_cache_memory_bytes: int | None = None,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        renderer_num_workers: int = 4,
        generation_config: str = "auto",
        batch_invariant: bool = False,
        cache_root: str | None = None,
        seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None,
        agent_output_constraint: dict[str, Any] | None = None,
        job_concurrency: int | None = None,
    ) -> None:
        self.model: ModelPreset = model_preset(model, hint=PRESET_HINT)
        for key in ("path", "tool_parser"):
            if not getattr(self.model, key):
                raise ConfigError(f"config error at `model.{key}`: Field required (got None){PRESET_HINT}")
        assert self.model.path is not None and self.model.tool_parser is not None
        self.tool_parser: str = self.model.tool_parser
        if _looks_local(self.model.path) and not Path(self.model.path).expanduser().is_dir():
            raise ConfigError(f"model.path={self.model.path!r} does not exist or is not a directory")
        if not 0.0 < gpu_memory_utilization <= 1.0:
            raise ConfigError(
                f"backend.gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        if renderer_num_workers < 1:
            raise ConfigError(f"backend.renderer_num_workers must be at least 1, got {renderer_num_workers}")
        self.gpu_memory_utilization = gpu_memory_utilization
        self.chat_template = _load_chat_template(self.model.chat_template)
        self.environment = engine_environment(cache_root, batch_invariant)
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
            "max_num_batched_tokens": max_num_batched_tokens,
            "renderer_num_workers": renderer_num_workers,
            "generation_config": generation_config,
            "seed": seed,
            **(engine_kwargs or {}),
        }
        self.agent_output_constraint = agent_output_constraint
        self.engine: Any = None
        self.model_config: Any = None
        self.default_sampling: dict[str, Any] = {}
        """The model's `generation_config` defaults, as `vllm serve` applies them."""
        self._entered = 0
        self._parser_class: Any = None
        self._reasoning_class: Any = None
        self._renderer: Any = None
        self._render_slots = asyncio.Semaphore(renderer_num_workers)
        self._is_mistral = False
        self.max_model_len = 0

    @property
    def settings(self) -> dict[str, Any]:
        """The engine settings in force (after vLLM's own defaults), for logs and benchmarks."""
        if self.engine is None:
            return {}
        config = self.engine.vllm_config
        return {
            "model": self.model.name,
            "max_model_len": self.max_model_len,
            "tensor_parallel_size": config.parallel_config.tensor_parallel_size,
            "gpu_memory_utilization": config.cache_config.gpu_memory_utilization,
            "kv_cache_memory_bytes": config.cache_config.kv_cache_memory_bytes,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_num_seqs": config.scheduler_config.max_num_seqs,
            "max_num_batched_tokens": config.scheduler_config.max_num_batched_tokens,
            "enable_chunked_prefill": config.scheduler_config.enable_chunked_prefill,
            "enable_prefix_caching": config.cache_config.enable_prefix_caching,
            "renderer_num_workers": config.model_config.renderer_num_workers,
            "enforce_eager": config.model_config.enforce_eager,
            "dtype": str(config.model_config.dtype),
            "generation_config_defaults": self.default_sampling,
            "tool_parser": self.tool_parser,
            "reasoning_parser": self.model.reasoning_parser,
            **{key: os.environ.get(key) for key in sorted(self.environment)},
        }

    @property
    def kv_cache_tokens(self) -> int | None:
        """The started engine's KV-cache capacity in tokens (None before it starts): what vLLM
        logs as "KV cache size: N tokens", else its blocks × block size."""
        if self.engine is None:
            return None
        cache = self.engine.vllm_config.cache_config
        tokens = getattr(cache, "kv_cache_size_tokens", None)
        if not tokens and cache.num_gpu_blocks:
            tokens = cache.num_gpu_blocks * cache.block_size
        return int(tokens) if tokens else None

    async def __aenter__(self) -> Self:
        """Start the engine; entering an already started backend again shares its engine."""
        if self._entered:
            self._entered += 1
            return self
        await self._start()
        self._entered = 1
        return self

    async def prepare(self) -> Any:
        """Everything up to loading weights: the engine config, the parsers, the tokenizer."""
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.reasoning import ReasoningParserManager
            from vllm.tool_parsers import ToolParserManager
            from vllm.usage.usage_lib import UsageContext
        except ImportError as error:
            from harness.errors import MissingDependencyError
            from harness.extras import install_hint

            raise MissingDependencyError(f"{install_hint('vllm', 'backend=vllm')}: {error}") from None
        os.environ.update(self.environment)
        try:
            self._parser_class = ToolParserManager.get_tool_parser(self.tool_parser)
        except KeyError:
            known = ", ".join(ToolParserManager.list_registered())
            raise ConfigError(
                f"model.tool_parser={self.tool_parser!r} is not a vLLM tool parser; known: {known}"
            ) from None
        if self.model.reasoning_parser:
            try:
                self._reasoning_class = ReasoningParserManager.get_reasoning_parser(
                    self.model.reasoning_parser
                )
            except KeyError:
                known = ", ".join(ReasoningParserManager.list_registered())
                raise ConfigError(
                    f"model.reasoning_parser={self.model.reasoning_parser!r} is not a vLLM reasoning "
                    f"parser; known: {known}"
                ) from None
        self._check_request_fields()
        if os.environ.get("HF_HUB_OFFLINE") == "1":  # say what is missing, not "vLLM rejected the config"
            from harness.cluster.weights import weights_problem

            problem = await asyncio.to_thread(
                weights_problem, self.model.model_dump(), os.environ.get("HF_HOME")
            )
            if problem:
                raise ConfigError(problem)
        args = AsyncEngineArgs(**{k: v for k, v in self.engine_args.items() if v is not None})
        try:
            vllm_config = await asyncio.to_thread(args.create_engine_config, UsageContext.ENGINE_CONTEXT)
        except Exception as error:  # vLLM reports bad model settings as assorted exception types
            raise ConfigError(
                f"vLLM rejected the model config ({self.model.name}): {_one_line(error)}"
            ) from None
        self.model_config = vllm_config.model_config
        self.max_model_len = vllm_config.model_config.max_model_len
        self.default_sampling = vllm_config.model_config.get_diff_sampling_param()
        await asyncio.to_thread(self._check_parsers, vllm_config.model_config)
        return vllm_config

    async def _start(self) -> None:
        from vllm.v1.engine.async_llm import AsyncLLM

        vllm_config = await self.prepare()
        try:
            with signals_ignored_by_children(TIME_LIMIT_SIGNALS):
                self.engine = AsyncLLM.from_vllm_config(vllm_config, disable_log_stats=False)
        except Exception as error:
            raise HarnessError(
                f"vLLM engine failed to start for {self.model.name}: {_one_line(error)}"
            ) from None
        self._renderer = self.engine.renderer
        try:
            await self._check_chat_template()
        except BaseException:
            self.engine.shutdown()
            self.engine = None
            raise
        log.info("vLLM engine ready: %s", self.settings)

    def use_renderer_of(self, vllm_config: Any) -> None:
        """Render with a renderer of its own (no engine): for checking prompts without weights."""
        from vllm.renderers import renderer_from_config

        self._renderer = renderer_from_config(vllm_config)

    def _check_request_fields(self) -> None:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        unknown = sorted(set(self.model.extra_body) - set(ChatCompletionRequest.model_fields))
        if unknown:
            raise ConfigError(
                f"model.extra_body has fields vLLM's chat request does not know: {', '.join(unknown)} "
                "(see vLLM's ChatCompletionRequest for sampling extras such as top_k, min_p, "
                "repetition_penalty)"
            )

    def _check_parsers(self, model_config: Any) -> None:
        """Build the tool and reasoning parsers on the model's tokenizer before any weights load."""
        from vllm.tokenizers import cached_tokenizer_from_config
        from vllm.utils.mistral import is_mistral_tokenizer

        tokenizer = cached_tokenizer_from_config(model_config)
        self._is_mistral = is_mistral_tokenizer(tokenizer)
        for key, name, factory in (
            ("tool_parser", self.tool_parser, self._parser_class),
            ("reasoning_parser", self.model.reasoning_parser, self._reasoning_class),
        ):
            if factory is None:
                continue
            try:
                factory(tokenizer)
            except Exception as error:
                raise ConfigError(
                    f"model.{key}={name!r} does not fit the tokenizer of {self.model.name}: "
                    f"{_one_line(error)}"
                ) from None

    async def _check_chat_template(self) -> None:
        """Fail before any conversation if the chat template cannot render tools."""
        request = self.request([PROBE_TOOL], Sampling())
        try:
            await self._render([{"role": "user", "content": "hello"}], request)
        except Exception as error:
            raise ConfigError(
                f"the chat template of {self.model.name} cannot render a conversation with tools "
                f"(set model.chat_template): {_one_line(error)}"
            ) from None

    async def release(self) -> None:
        """Leave one `async with`; the last one shuts the engine down."""
        self._entered = max(0, self._entered - 1)
        if not self._entered and self.engine is not None:
            self.engine.shutdown()
            self.engine = None

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        constraint = self.agent_output_constraint if role == "agent" else None
        return VLLMChat(self, constraint)

    def request(
        self,
        tools: Sequence[ToolSchema] | None,
        sampling: Sampling,
        constraint: dict[str, Any] | None = None,
    ) -> Any:
        """The `ChatCompletionRequest` `vllm serve` would receive for this call (messages apart)."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        body: dict[str, Any] = {
            **self.model.extra_body,
            "model": self.model.name,
            "messages": [],
            "tools": list(tools) if tools else None,
            "max_tokens": sampling.max_tokens,
        }
        values = {"temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
        body.update({key: values[key] for key in self.model.sampling_fields if values[key] is not None})
        if self.model.chat_template_kwargs:
            body["chat_template_kwargs"] = self.model.chat_template_kwargs
        if self.model.reasoning_effort is not None:
            body["reasoning_effort"] = self.model.reasoning_effort
        if constraint:
            body["structured_outputs"] = constraint
        request = ChatCompletionRequest.model_validate(body)
        if tools:
            request = self._parser_class(self._renderer.get_tokenizer()).adjust_request(request)
        return request

    async def _render(self, messages: list[Message], request: Any) -> dict[str, Any]:
        if self._is_mistral:
            messages = mistral_messages(messages)
        tools = [tool.model_dump() for tool in request.tools] if request.tools else None
        params = request.build_chat_params(self.chat_template, "auto").with_defaults(
            {"tools": tools, "tokenize": self._is_mistral}
        )
        renderer = self._renderer
        tok_params = renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)
        # vLLM times a render from the moment it is queued for a renderer thread: queue here instead.
        async with self._render_slots:
            _, (engine_input,) = await renderer.render_chat_async([messages], params, tok_params)
        return engine_input

    def read_reply(
        self, text: str, token_ids: Sequence[int], request: Any, finish_reason: str | None
    ) -> tuple[str | None, list[ToolCall], str | None, int | None]:
        """Content, tool calls, a parse error and the reasoning's token count of one reply."""
        reasoning_tokens = None
        content: str | None = text
        tokenizer = self._renderer.get_tokenizer()
        if self._reasoning_class is not None:
            reasoner = self._reasoning_class(
                tokenizer, chat_template_kwargs=request.chat_template_kwargs, model_config=self.model_config
            )
            _, content = reasoner.extract_reasoning(text, request)
            reasoning_tokens = reasoner.count_reasoning_tokens(list(token_ids))
        if not request.tools or content is None:
            return content, [], None, reasoning_tokens
        content, calls, error = self.parse_tool_calls(content, request)
        if error and finish_reason == "length":
            error = f"tool call cut off at max_tokens ({len(token_ids)} tokens): {text[-200:]!r}"
        return content, calls, error, reasoning_tokens

    def parse_tool_calls(self, text: str, request: Any) -> tuple[str | None, list[ToolCall], str | None]:
        """Content, tool calls and a parse error, read by the configured vLLM tool parser."""
        parser = self._parser_class(self._renderer.get_tokenizer())
        try:
            info = parser.extract_tool_calls(text, request)
        except Exception as error:
            return text, [], f"{self.tool_parser} parser failed: {_one_line(error)}"
        if info.tools_called and info.tool_calls:
            calls = [
                ToolCall(
                    call.id or f"call_{uuid.uuid4().hex[:12]}", call.function.name, call.function.arguments
                )
                for call in info.tool_calls
            ]
            return info.content or None, calls, None
        if self._attempted_call(parser, text):
            return text, [], f"unparseable tool call ({self.tool_parser} parser): {text[:200]!r}"
        return info.content if info.content is not None else text, [], None

    def _attempted_call(self, parser: Any, text: str) -> bool:
        markers = [getattr(parser, attr, None) for attr in ("tool_call_start_token", "bot_token")]
        if any(isinstance(m, str) and m and m in text for m in markers):
            return True
        return self.tool_parser in JSON_ONLY_PARSERS and text.lstrip().startswith("{")


@dataclass(frozen=True, slots=True)
class VLLMChat:
    backend: VLLMBackend
    output_constraint: dict[str, Any] | None = None

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        from jinja2 import TemplateError
        from vllm.exceptions import VLLMClientError, VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        backend = self.backend
        engine = backend.engine
        if engine is None:
            raise BackendUnavailable("the vLLM engine is not running")
        if engine.errored:
            raise EngineDied(f"the vLLM engine of {backend.model.name} is dead")
        started = time.perf_counter()
        request = backend.request(tools, sampling, self.output_constraint)
        try:
            engine_input = await backend._render(list(messages), request)
        except TimeoutError as error:
            raise BackendUnavailable(f"chat template render timed out: {_one_line(error)}") from error
        except (VLLMClientError, ValueError, TemplateError) as error:
            if _is_overflow(error):
                raise ContextWindowExceeded(_one_line(error)) from error
            raise ModelInputRejected(
                f"the chat template of {backend.model.name} cannot render this conversation: {_one_line(error)}"
            ) from error
        prompt_len = len(engine_input["prompt_token_ids"])
        room = backend.max_model_len - prompt_len
        if room <= 0:
            raise ContextWindowExceeded(
                f"prompt of {prompt_len} tokens does not fit max_model_len {backend.max_model_len}"
            )
        params = request.to_sampling_params(min(sampling.max_tokens, room), backend.default_sampling)
        final = None
        try:
            async for output in engine.generate(engine_input, params, uuid.uuid4().hex):
                final = output
        except EngineDeadError as error:
            raise EngineDied(f"the vLLM engine of {backend.model.name} died: {_one_line(error)}") from error
        except EngineGenerateError as error:
            raise BackendUnavailable(f"vLLM failed this request: {_one_line(error)}") from error
        except VLLMValidationError as error:
            if _is_overflow(error):
                raise ContextWindowExceeded(_one_line(error)) from error
            raise ModelInputRejected(f"vLLM refused the request: {_one_line(error)}") from error
        assert final is not None and final.finished
        completion = final.outputs[0]
        finish_reason = completion.finish_reason
        content, calls, parse_error, reasoning_tokens = backend.read_reply(
            completion.text, completion.token_ids, request, finish_reason
        )
        return Reply(
            content=content,
            tool_calls=calls,
            prompt_tokens=len(final.prompt_token_ids or []),
            completion_tokens=len(completion.token_ids),
            cached_tokens=final.num_cached_tokens,
            latency_s=time.perf_counter() - started,
            parse_error=parse_error,
            finish_reason=finish_reason,
            reasoning_tokens=reasoning_tokens,
        )


def check_engines_fit(agent: Backend, user: Backend | None) -> None:
    """Refuse, before any weights load, two vLLM engines that cannot share the job's GPUs."""
    if not isinstance(agent, VLLMBackend) or not isinstance(user, VLLMBackend) or user is agent:
        return
    problem = memory_split_problem(agent.gpu_memory_utilization, user.gpu_memory_utilization)
    if problem:
        raise ConfigError(problem)


def memory_split_problem(agent: float, user: float) -> str | None:
    """One line when two engines' `gpu_memory_utilization` cannot share the job's GPUs, else None.

    Both engines start on the job's first GPUs (all of the agent's tensor-parallel GPUs hold a
    share of each), and vLLM's startup check wants `gpu_memory_utilization` of a GPU still free.
    Asked by the launcher before submitting and by the job before loading.
    """
    total = agent + user
    if total <= SHARED_GPU_MEMORY_LIMIT + 1e-9:  # 0.5 + 0.45 fits
        return None
    return (
        f"backend.gpu_memory_utilization ({agent}) + user.backend.gpu_memory_utilization ({user}) = "
        f"{total:.2f}: the agent's and the user's vLLM engines share the job's GPUs and may claim at most "
        f"{SHARED_GPU_MEMORY_LIMIT} of each together; lower one or both"
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
