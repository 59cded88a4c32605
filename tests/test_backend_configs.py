"""Every model preset composes with its backend and builds without loading anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.openai_compat import OpenAIBackend
from harness.backends.oracle import OracleBackend
from harness.backends.vllm import VLLMBackend, engine_environment
from harness.errors import ConfigError
from harness.job.app import build as instantiate_component
from harness.job.app import build_job, settings_from
from tests.helpers import CONF, TOY, compose_config

VLLM_PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if "tool_parser" in p.read_text())
NATIVE_API = {"ANTHROPIC_API_KEY": "anthropic", "GEMINI_API_KEY": "gemini"}
"""Presets whose key names a provider with a backend of its own (docs/backends.md)."""
API_PRESETS = sorted(
    p.stem
    for p in (CONF / "model").glob("*.yaml")
    if "base_url" in p.read_text() and not any(key in p.read_text() for key in NATIVE_API)
)
NATIVE_PRESETS = sorted(
    (p.stem, backend)
    for p in (CONF / "model").glob("*.yaml")
    for key, backend in NATIVE_API.items()
    if f"api_key_env: {key}" in p.read_text()
)


def test_presets_exist() -> None:
    assert {
        "qwen2.5-7b",
        "qwen2.5-32b",
        "qwen2.5-72b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "mistral-small",
    } <= set(VLLM_PRESETS)
    assert "gpt-4o" in API_PRESETS


@pytest.mark.parametrize("preset", VLLM_PRESETS)
def test_vllm_presets_build_a_backend(preset: str) -> None:
    cfg = compose_config(["backend=vllm", f"model={preset}"])
    settings = settings_from(cfg)
    backend = instantiate_component(settings.backend)
    assert isinstance(backend, VLLMBackend) and backend.engine is None
    assert backend.engine_args["tensor_parallel_size"] == settings.model["gpus"] >= 1
    assert backend.engine_args["enable_prefix_caching"] is True
    assert backend.model.tool_parser in {"hermes", "llama3_json", "mistral"}


@pytest.mark.parametrize("preset", API_PRESETS)
def test_api_presets_build_a_backend(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    cfg = compose_config(["backend=openai", f"model={preset}"])
    backend = instantiate_component(settings_from(cfg).backend)
    assert isinstance(backend, OpenAIBackend) and backend.client is None
    assert settings_from(cfg).model["gpus"] == 0


@pytest.mark.parametrize(("preset", "backend"), NATIVE_PRESETS)
def test_native_api_presets_build_their_backend(
    preset: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.backends.hosted import HostedBackend

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-x")
    monkeypatch.setenv("GEMINI_API_KEY", "sk-x")
    cfg = compose_config([f"backend={backend}", f"model={preset}"])
    built = instantiate_component(settings_from(cfg).backend)
    assert isinstance(built, HostedBackend) and built.name == backend and built.client is None
    assert {"max_concurrency", "timeout_s", "max_retries"} <= built.RUNTIME_KEYS
    prices = settings_from(cfg).model["prices"]
    assert prices["input"] > prices["cached_input"] > 0 and prices["output"] > prices["input"]


@pytest.mark.parametrize("preset", ["gpt-5", "gpt-5-mini"])
def test_openai_presets_also_build_the_responses_backend(
    preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    built = instantiate_component(
        settings_from(compose_config(["backend=openai_responses", f"model={preset}"])).backend
    )
    assert built.name == "openai_responses" and built.client is None


@pytest.mark.parametrize("backend", ["anthropic", "gemini", "openai_responses"])
def test_each_provider_plays_the_simulated_user(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(key, "sk-x")
    cfg = compose_config(["backend=vllm", "model=qwen2.5-7b", f"+user/backend={backend}"])
    user_backend = instantiate_component(settings_from(cfg).user.backend)
    assert user_backend.name == backend and user_backend.model.prices.input is not None


def test_user_backend_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    cfg = compose_config(
        ["backend=vllm", "model=qwen2.5-72b", "+user/backend=openai", "model@user.backend.model=gpt-4o-mini"]
    )
    settings = settings_from(cfg)
    assert settings.model["name"] == "qwen2.5-72b-instruct"
    user_backend = instantiate_component(settings.user.backend)
    assert isinstance(user_backend, OpenAIBackend) and user_backend.api_model == "gpt-4o-mini"
    cfg = compose_config(["backend=vllm", "+user/backend=vllm", "model@user.backend.model=llama-3.1-8b"])
    user_backend = instantiate_component(settings_from(cfg).user.backend)
    assert isinstance(user_backend, VLLMBackend) and user_backend.model.tool_parser == "llama3_json"


def test_oracle_still_composes() -> None:
    settings = settings_from(compose_config(["model=oracle"]))
    assert isinstance(instantiate_component(settings.backend), OracleBackend)
    assert settings.model == {"name": "oracle", "gpus": 0}


def test_vllm_backend_needs_a_model_preset() -> None:
    settings = settings_from(compose_config(["backend=vllm", "model=oracle"]))
    with pytest.raises(ConfigError, match=r"`model\.path`: Field required .*model=qwen2.5-7b"):
        instantiate_component(settings.backend)


def test_missing_local_model_path_is_a_config_error(tmp_path: Path) -> None:
    settings = settings_from(
        compose_config(["backend=vllm", f"model.path={tmp_path}/nope", "model=qwen2.5-7b"])
    )
    with pytest.raises(ConfigError, match="does not exist"):
        instantiate_component(settings.backend)


def test_missing_api_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = settings_from(compose_config(["backend=openai", "model=gpt-4o"]))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY, which is not set"):
        instantiate_component(settings.backend)


def test_an_unknown_preset_key_is_an_error_naming_it() -> None:
    settings = settings_from(
        compose_config(["backend=vllm", "model=qwen2.5-7b", "+model.reasoning_parsr=qwen3"])
    )
    with pytest.raises(ConfigError, match=r"`model\.reasoning_parsr`: Extra inputs are not permitted"):
        instantiate_component(settings.backend)


def test_vllm_jobs_run_at_the_backends_concurrency_and_batch_all_of_it() -> None:
    settings = settings_from(compose_config(["backend=vllm", "model=qwen2.5-7b"]))
    assert settings.concurrency == 128
    assert instantiate_component(settings.backend).engine_args["max_num_seqs"] == 128
    settings = settings_from(compose_config(["backend=vllm", "model=qwen2.5-7b", "concurrency=48"]))
    assert instantiate_component(settings.backend).engine_args["max_num_seqs"] == 48
    assert settings_from(compose_config(["backend=oracle"])).concurrency == 32


@pytest.mark.parametrize(
    ("agent", "user", "fits"),
    [("0.9", "0.45", False), ("0.5", "0.5", False), ("0.5", "0.45", True), ("0.45", "0.45", True)],
)
def test_two_engines_must_fit_the_shared_gpus_before_anything_loads(
    agent: str, user: str, fits: bool, tmp_path: Path
) -> None:
    cfg = compose_config(
        [
            *TOY,  # no τ-bench needed: the check comes before any engine, whatever the domain
            "backend=vllm",
            "model=qwen2.5-72b",
            f"backend.gpu_memory_utilization={agent}",
            "+user/backend=vllm",
            "model@user.backend.model=llama-3.1-8b",
            f"user.backend.gpu_memory_utilization={user}",
        ]
    )
    if fits:
        job = build_job(cfg, tmp_path)
        assert isinstance(job.user_backend, VLLMBackend) and job.user_backend.engine is None
        return
    with pytest.raises(ConfigError) as error:
        build_job(cfg, tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert (
        f"backend.gpu_memory_utilization ({agent}) + user.backend.gpu_memory_utilization ({user})" in message
    )
    assert not (tmp_path / "job.json").exists()


def test_engine_workers_are_spawned_and_each_job_compiles_into_its_own_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    monkeypatch.setenv("TMPDIR", "/scratch")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert engine_environment(None, batch_invariant=False) == {
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        "VLLM_CACHE_ROOT": "/scratch/tau-emotion-vllm-77_3",
    }
    monkeypatch.setenv("VLLM_CACHE_ROOT", "/shared/vllm")
    assert engine_environment(None, batch_invariant=True) == {
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        "VLLM_CACHE_ROOT": "/shared/vllm",
        "VLLM_BATCH_INVARIANT": "1",
    }
    assert engine_environment("/mine", batch_invariant=False)["VLLM_CACHE_ROOT"] == "/mine"


def test_a_vllm_job_resumes_at_another_concurrency(tmp_path: Path) -> None:
    base = [
        *TOY,
        "backend=vllm",
        "model=qwen2.5-7b",
        "+user/backend=vllm",
        "backend.gpu_memory_utilization=0.5",
    ]
    first = build_job(compose_config(base), tmp_path)
    again = build_job(
        compose_config([*base, "concurrency=48", "backend.max_num_batched_tokens=8192"]), tmp_path
    )
    assert first.fingerprint == again.fingerprint
    other = build_job(compose_config([*base, "backend.generation_config=vllm"]), tmp_path)
    assert other.fingerprint != first.fingerprint
    assert first.fingerprint["backend"].get("max_num_seqs") is None
