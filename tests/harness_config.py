"""Composes the real Hydra config from conf/ for tests, with overrides."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF = Path(__file__).resolve().parent.parent / "conf"


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
