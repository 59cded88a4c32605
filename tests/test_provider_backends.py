"""Anthropic Messages, Gemini and OpenAI Responses backends against fake servers of each API.

Whole jobs run the oracle's replies through each API's real request and response path (the
official client, the fake server's checks and caching): every conversation must score 1.0, cached
tokens must be recorded, and the job's cost must match the sum worked out here from each recorded
call's usage and the preset's prices. τ-bench retail where it is installed, else the toy shop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BackendUnavailable, RequestRejected
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.fake_provider_servers import FakeAnthropic, FakeAPI, FakeGemini, FakeResponses, serve
from tests.helpers import TOY as TOY_OVERRIDES
from tests.helpers import compose_config, read_jsonl
from tests.oracle_responder import OracleResponder
from tests.toy_dual_domain import load_toy_dual_domain

pytest.importorskip("anthropic", reason="backend=anthropic needs `pip install -e '.[anthropic]'`")
pytest.importorskip("google.genai", reason="backend=gemini needs `pip install -e '.[gemini]'`")
pytest.importorskip("openai", reason="backend=openai_responses needs `pip install -e '.[openai]'`")

KEY_ENV = "TAU_EMOTION_TEST_KEY"


@dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    twenty: tuple[str, ...]
    """Selects 20 conversations."""
    min_cache: int
    """The providers cache prefixes of at least 1024 tokens; the toy shop's whole prefix is shorter."""

    def load(self) -> Any:
        if self.name == "retail":
            from harness.domains.taubench.loader import load_taubench_domain

            return load_taubench_domain("retail", "test")
        from tests.toy_domain import load_toy_domain

        return load_toy_domain()


RETAIL = Case("retail", ("env=retail", "progress=false"), ("env.task_range=[0,20]",), 1024)
TOY = Case("toy", tuple(TOY_OVERRIDES), ("env.trials=4",), 128)
CASES = [pytest.param(RETAIL, id="retail", marks=pytest.mark.taubench), pytest.param(TOY, id="toy")]

PROVIDERS: dict[str, dict[str, Any]] = {
    "anthropic": {"preset": "claude-sonnet-4.6", "fake": FakeAnthropic, "path": ""},
    "gemini": {"preset": "gemini-3-pro", "fake": FakeGemini, "path": ""},
    "openai_responses": {"preset": "gpt-5", "fake": FakeResponses, "path": "/v1"},
}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


@contextmanager
def fake(backend: str, case: Case) -> Iterator[FakeAPI]:
    api = PROVIDERS[backend]["fake"](OracleResponder.for_domain(case.load()), min_cache_tokens=case.min_cache)
    with serve(api) as served:
        yield served


def on(backend: str, api: FakeAPI, prefix: str = "model") -> list[str]:
    url = api.url + PROVIDERS[backend]["path"]
    return [
        f"{prefix}.base_url={url}",
        f"{prefix}.api_model={api.model}",  # type: ignore[attr-defined]
        f"{prefix}.api_key_env={KEY_ENV}",
    ]


def agent_on(backend: str, api: FakeAPI, *extra: str) -> list[str]:
    return [
        f"backend={backend}",
        f"model={PROVIDERS[backend]['preset']}",
        "backend.backoff_s=0.01",
        "backend.max_retries=1",
        *on(backend, api),
        *extra,
    ]


def run(out: Path, case: Case, overrides: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cfg = compose_config([*case.overrides, *overrides, "wandb.mode=disabled"])
    summary = asyncio.run(run_job(build_job(cfg, out)))
    return summary, read_jsonl(out / CONVERSATIONS)


def hand_cost(records: list[dict[str, Any]], prices: dict[str, float]) -> float:
    """Dollars from every recorded call: uncached input, cache reads, cache writes, output."""
    dollars = 0.0
    for record in records:
        for call in record["calls"]:
            read, written = call["cached_tokens"] or 0, call.get("cache_write_tokens") or 0
            fresh = call["prompt_tokens"] - read - written
            dollars += (
                fresh * prices["input"]
                + read * prices["cached_input"]
                + written * prices.get("cache_write", prices["input"])
                + call["completion_tokens"] * prices["output"]
            )
    return dollars / 1e6


def preset_prices(name: str) -> dict[str, float]:
    cfg = compose_config([f"model={name}"])
    return {k: v for k, v in dict(cfg.model.prices).items() if v is not None}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", list(PROVIDERS))
def test_twenty_oracle_conversations_score_one_cache_and_cost_what_their_usage_says(
    backend: str, case: Case, tmp_path: Path
) -> None:
    extra = ["model.thinking_budget=2048"] if backend == "anthropic" else []
    with fake(backend, case) as api:
        summary, records = run(tmp_path, case, [*agent_on(backend, api, *extra), *case.twenty])
    assert len(records) == 20 and summary["scored"] == 20, summary["terminations"]
    assert summary["average_reward"] == 1.0, [r["error"] for r in records if r["reward"] != 1.0][:3]
    assert not api.refusals
    calls = [call for record in records for call in record["calls"]]
    assert sum(call["cached_tokens"] or 0 for call in calls) > 0
    agent_calls = [call for call in calls if call["role"] == "agent"]
    assert {call["served_model"] for call in agent_calls} == {api.served(api.model)}  # type: ignore[attr-defined]
    if backend == "anthropic":
        assert sum(call["cache_write_tokens"] or 0 for call in calls) > 0
    usd = hand_cost(records, preset_prices(PROVIDERS[backend]["preset"]))
    assert summary["cost"]["usd"] == pytest.approx(usd, rel=1e-9) and usd > 0
    tool_turns = [m for r in records for m in r["messages"] if m.get("tool_calls")]
    assert tool_turns and all("native" in m for m in tool_turns)  # thinking / signatures / reasoning kept
    first = tool_turns[0]["native"]
    if backend == "anthropic":
        assert first["content"][0]["type"] == "thinking" and first["content"][0]["signature"]
    elif backend == "gemini":
        assert first["parts"][0]["thought_signature"]
    else:
        assert first["output"][0]["type"] == "reasoning" and first["output"][0]["encrypted_content"]


@pytest.mark.parametrize("case", CASES)
def test_anthropic_caches_the_shared_prefix_across_conversations(case: Case, tmp_path: Path) -> None:
    with fake("anthropic", case) as api:
        _, records = run(
            tmp_path,
            case,
            [*agent_on("anthropic", api, "backend.cache=prefix"), "env.tasks=[0,1]", "concurrency=1"],
        )
    first, second = (next(c for c in r["calls"] if c["role"] == "agent") for r in records)
    assert first["cache_write_tokens"] > 0 and first["cached_tokens"] == 0
    assert second["cached_tokens"] == first["cache_write_tokens"] and second["cache_write_tokens"] == 0
    request = next(r for r in api.requests if r.get("tools"))
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert request["tools"][-1]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize(
    ("backend", "override", "names"),
    [
        ("anthropic", "+model.extra_body={temperature: 0.0}", "remove `extra_body.temperature`"),
        (
            "openai_responses",
            "model.sampling_fields=[temperature]",
            "remove 'temperature' from `sampling_fields`",
        ),
        ("openai_responses", "model.reasoning_effort=extreme", "set `reasoning_effort`"),
        ("anthropic", "model.thinking_budget=512", "set `thinking_budget`"),
        ("gemini", "model.thinking_budget=0", "set `thinking_budget`"),
        ("gemini", "+model.extra_body={thinking_budgett: 5}", "config error at `model.extra_body`"),
    ],
)
def test_a_refused_first_request_stops_the_job_in_one_line_naming_the_preset_key(
    backend: str, override: str, names: str, tmp_path: Path
) -> None:
    with fake(backend, TOY) as api, pytest.raises(RequestRejected) as stopped:
        run(tmp_path, TOY, [*agent_on(backend, api, override), "env.tasks=[0,1,2]"])
    message = str(stopped.value)
    assert "\n" not in message and names in message and PROVIDERS[backend]["preset"] in message
    # the other conversations waited for the first answer (a config the SDK refuses never leaves)
    assert len(api.refusals) == (0 if "thinking_budgett" in override else 1)


REFUSALS = {
    "anthropic": "Expected `thinking` or `redacted_thinking`",
    "gemini": "missing a thought_signature",
    "openai_responses": "without its required 'reasoning' item",
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", list(PROVIDERS))
def test_the_fakes_refuse_a_turn_sent_back_without_its_native_state(backend: str, case: Case) -> None:
    """What a harness that kept only id, name and arguments would send: each API's refusal."""
    from harness.backends.anthropic_messages import AnthropicBackend
    from harness.backends.gemini import GeminiBackend
    from harness.backends.openai_responses import ResponsesBackend
    from harness.episode.types import Sampling

    domain = case.load()
    opening = [
        {"role": "system", "content": domain.wiki},
        {"role": "user", "content": "Hello, I need help with request #0."},
    ]
    classes = {"anthropic": AnthropicBackend, "gemini": GeminiBackend, "openai_responses": ResponsesBackend}
    api = PROVIDERS[backend]["fake"](OracleResponder.for_domain(domain), min_cache_tokens=case.min_cache)
    with serve(api):
        preset = {
            "name": f"fake-{backend}", "api_model": api.model, "api_key_env": KEY_ENV,  # type: ignore[attr-defined]
            "base_url": api.url + PROVIDERS[backend]["path"], "sampling_fields": [],
            "thinking_budget": 2048 if backend == "anthropic" else None,
        }  # fmt: skip

        async def two_steps(native: bool) -> Any:
            async with classes[backend](preset, backoff_s=0.01, max_retries=0) as model:
                reply = await model.complete(opening, domain.tools_info, Sampling())
                assistant = reply.to_message()
                if not native:
                    assistant.pop("native")
                call = reply.tool_calls[0]
                result = {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "u1"}
                return await model.complete([*opening, assistant, result], domain.tools_info, Sampling())

        assert asyncio.run(two_steps(native=True)).tool_calls  # with its state the turn goes on
        # the first request was answered: a later refusal ends this conversation, not the job
        with pytest.raises(BackendUnavailable, match=re.escape(REFUSALS[backend])):
            asyncio.run(two_steps(native=False))


def test_a_claude_agent_a_gpt_user_and_a_gemini_judge_in_one_job(tmp_path: Path) -> None:
    dual = load_toy_dual_domain()
    responder = OracleResponder.for_domain(dual)
    with (
        serve(FakeAnthropic(responder, min_cache_tokens=64)) as claude,
        serve(FakeResponses(responder, min_cache_tokens=64)) as gpt,
        serve(FakeGemini(responder, min_cache_tokens=64)) as gemini,
    ):
        judge = (
            "++env.judge={_target_: harness.backends.gemini.GeminiBackend, "
            f"model: {{name: gemini-judge, api_model: {gemini.model}, base_url: '{gemini.url}', "  # type: ignore[attr-defined]
            f"api_key_env: {KEY_ENV}, prices: {{input: 2.0, cached_input: 0.2, output: 12.0}}}}}}"
        )
        cfg = compose_config(
            [
                "env.domain._target_=tests.toy_dual_domain.load_toy_dual_domain", "env.name=toy_dual",
                *agent_on("anthropic", claude, "model.thinking_budget=1024"),
                "+user/backend=openai_responses", "model@user.backend.model=gpt-5", *on("openai_responses", gpt, "user.backend.model"),
                judge, "wandb.mode=disabled", "env.trials=2",
            ]
        )  # fmt: skip
        summary = asyncio.run(run_job(build_job(cfg, tmp_path)))
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert summary["average_reward"] == 1.0 and summary["scored"] == 4, summary["terminations"]
    assert claude.requests and gpt.requests and gemini.requests
    assert not (claude.refusals or gpt.refusals or gemini.refusals)
    judged = [r for r in records if r["task_id"] == 0]
    assert all(r["reward_info"]["nl"] == [True] for r in judged)
    user_turns = [m for r in records for m in r["user_messages"] if m.get("tool_calls")]
    assert user_turns and all(m["native"]["api"] == "openai_responses" for m in user_turns)
    job = json.dumps(json.loads((tmp_path / "job.json").read_text()))
    assert '"backend": "anthropic"' in job and '"backend": "openai_responses"' in job


VALID_ONE_TURN = (
    '{"turns": [{"turn": 0, "reason": "Sharp.", "emotion": "anger", "intensity": 2}], "fidelity": [], '
    '"agent": [{"message": 0, "apology": false, "empathy": false, "refusal": false}]}'
)  # one customer turn and one agent message: every toy conversation but task 3


@pytest.mark.parametrize("backend", list(PROVIDERS))
def test_each_api_judges_with_the_verdict_schema(backend: str, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from harness.episode.types import Reply
    from harness.errors import ExitCode
    from harness.judge.app import run as run_judge
    from harness.store.layout import JUDGMENTS_DIR
    from tests.helpers import CONF, run_toy_job

    run_toy_job(tmp_path / "anger", ["variant=anger", "env.tasks=[0,1]"])
    api = PROVIDERS[backend]["fake"](lambda messages, tools: Reply(content=VALID_ONE_TURN))
    with serve(api), initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="judge",
            overrides=[
                f"sweep_dir={tmp_path}", f"backend={backend}", f"model={PROVIDERS[backend]['preset']}",
                *on(backend, api), "wandb.mode=disabled", "backend.backoff_s=0.01",
            ],
        )  # fmt: skip
        assert run_judge(cfg) == ExitCode.OK
    judgments = read_jsonl(next((tmp_path / "anger" / JUDGMENTS_DIR).glob("*.jsonl")))
    assert len(judgments) == 2 and all(j["error"] is None for j in judgments)
    assert all(j["usage"]["prompt_tokens"] > 0 for j in judgments)
    request = api.requests[0]
    if backend == "anthropic":
        assert request["tool_choice"] == {"type": "tool", "name": "verdict"}
        assert request["tools"][-1]["input_schema"]["properties"]["turns"]
    elif backend == "gemini":
        assert request["generationConfig"]["responseMimeType"] == "application/json"
        assert request["generationConfig"]["responseJsonSchema"]["properties"]["turns"]
    else:
        assert request["text"]["format"]["type"] == "json_schema" and "tools" not in request
