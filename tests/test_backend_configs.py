"""Every model preset composes with its backend and builds without loading anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.app import build as instantiate_component
from harness.app import settings_from
from harness.backends.openai_compat import OpenAIBackend
from harness.backends.oracle import OracleBackend
from harness.backends.vllm import VLLMBackend
from harness.errors import ConfigError
from tests.helpers import CONF, compose_config

VLLM_PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if "tool_parser" in p.read_text())
API_PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if "base_url" in p.read_text())


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
