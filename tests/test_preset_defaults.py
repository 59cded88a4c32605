"""Per-model defaults from the presets: sampling, token limits, concurrency, timeouts, SLURM resources."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from harness.job.app import settings_from
from harness.store import CONVERSATIONS, JOB_FILE
from tests.helpers import CONF, TOY, compose_config, read_jsonl, run_toy_job


def resolved(overrides: list[str]) -> dict:  # type: ignore[type-arg]
    cfg = compose_config(overrides)
    settings = settings_from(cfg)
    return {
        "agent": settings.agent["sampling"].model_dump(),
        "user": settings.user.sampling.model_dump(),
        "concurrency": settings.concurrency,
        "backend": settings.backend,
    }


def test_qwen3_thinks_with_its_recommended_sampling_and_room_to_think() -> None:
    got = resolved(["backend=vllm", "model=qwen3-8b"])
    assert got["agent"] == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 8192}  # never greedy
    assert got["user"] == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 4096}  # the user shares it
    assert got["backend"]["model"]["extra_body"] == {"top_k": 20, "min_p": 0.0}
    assert got["concurrency"] == 64 and got["backend"]["max_num_seqs"] == 64


def test_models_without_defaults_keep_the_config_defaults() -> None:
    got = resolved(["backend=vllm", "model=qwen2.5-7b"])
    assert got["agent"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1024}
    assert got["user"] == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 512}
    assert got["concurrency"] == 128


def test_gpt5_leaves_room_for_reasoning_and_waits_longer() -> None:
    got = resolved(["backend=openai", "model=gpt-5"])
    assert got["agent"]["max_tokens"] == 25000 and got["user"]["max_tokens"] == 16000
    assert got["backend"]["timeout_s"] == 600


def test_the_users_own_backend_takes_its_own_presets_defaults() -> None:
    overrides = ["backend=vllm", "model=qwen2.5-7b", "+user/backend=openai", "model@user.backend.model=gpt-5"]
    got = resolved(overrides)
    assert got["user"]["max_tokens"] == 16000 and got["agent"]["max_tokens"] == 1024
    user_backend = settings_from(compose_config(overrides)).user.backend
    assert user_backend is not None and user_backend["timeout_s"] == 600


def test_an_explicit_override_wins_over_the_preset() -> None:
    got = resolved(["backend=vllm", "model=qwen3-8b", "agent.sampling.max_tokens=16384", "concurrency=8"])
    assert got["agent"]["max_tokens"] == 16384 and got["concurrency"] == 8


def test_slurm_resources_come_from_the_jobs_preset() -> None:
    launcher = OmegaConf.load(CONF / "hydra" / "launcher" / "slurm.yaml")
    for model, mem_gb, cpus in (("llama-3.1-70b", 256, 32), ("qwen2.5-7b", 64, 8)):
        cfg = compose_config([f"model={model}"])
        OmegaConf.set_struct(cfg, False)
        cfg.launcher = launcher
        assert (cfg.launcher.mem_gb, cfg.launcher.cpus_per_task) == (mem_gb, cpus)


def test_the_job_records_the_presets_defaults(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["backend=scripted", "model=qwen3-8b", "env.tasks=[0]"])
    info = json.loads((tmp_path / JOB_FILE).read_text())["info"]
    assert info["preset_defaults"]["agent"]["agent_sampling"]["temperature"] == 0.6
    assert info["preset_defaults"]["user"]["concurrency"] == 64
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["preset_defaults"] == info["preset_defaults"]
    assert record["user_simulator"]["sampling"]["max_tokens"] == 4096
    assert TOY  # the toy shop, no τ-bench needed
