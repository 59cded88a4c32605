"""Composes the real Hydra config from conf/ for tests, with overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness.taubench import taubench_available

CONF = Path(__file__).resolve().parent.parent / "conf"
TOY_DOMAIN = ["env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy"]


@dataclass(frozen=True)
class DomainCase:
    """A domain for whole-conversation tests on a real model."""

    name: str
    overrides: tuple[str, ...]
    min_prompt_tokens: int  # the agent's prompts hold the wiki and every tool schema: at least this many
    marks: tuple[pytest.MarkDecorator, ...] = ()

    def param(self) -> object:
        """This case as a `pytest.mark.parametrize` value, shown as `[<name>]` in test ids."""
        return pytest.param(self, id=self.name, marks=self.marks)


def conversation_domain() -> DomainCase:
    """τ-bench's retail domain where τ-bench is installed, else the project's toy shop."""
    if taubench_available():
        return DomainCase("retail", ("env=retail",), 1000, (pytest.mark.taubench,))
    return DomainCase("toy", tuple(TOY_DOMAIN), 500)


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=["progress=false", *overrides])


def tiny_vllm_overrides(model_dir: Path, max_model_len: int = 16384) -> list[str]:
    """`backend=vllm` on the tiny CPU model: float32, eager, a small explicit KV cache.

    Chunked prefill is off: vLLM's CPU sampler cannot rewind a seeded generator after a partial
    prefill ("CPU Generator does not use offset"), so seeded requests must be prefilled whole.
    """
    return [
        "backend=vllm",
        "model=qwen2.5-7b",
        f"model.path={model_dir}",
        "model.name=tiny",
        "model.dtype=float32",
        f"model.max_model_len={max_model_len}",
        "backend.kv_cache_memory_bytes=268435456",
        "backend.enforce_eager=true",
        f"++backend.engine_kwargs={{enable_chunked_prefill:false,max_num_batched_tokens:{max_model_len}}}",
    ]
