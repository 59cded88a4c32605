"""Weights for offline compute nodes: every shard in the cache (or directory) before a sweep is queued."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from harness.cluster.weights import weights_environment, weights_problem
from tests.helpers import ROOT, harness_cli

pytest.importorskip("huggingface_hub", reason="the weights check needs huggingface_hub (comes with vLLM)")

REPO = "acme/tiny-chat"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def fill_cache(hf_home: Path, shards: list[str]) -> None:
    """The layout huggingface_hub's downloads leave: refs/main -> a snapshot holding the files."""
    repo = hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").write_text("{}")
    index = {"weight_map": {f"layer.{i}": SHARDS[i % 2] for i in range(4)}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    for shard in shards:
        (snapshot / shard).write_bytes(b"x")


def refused_vllm_sweep(label: str, *overrides: str) -> str:
    """The stderr of a `backend=vllm` sweep under SLURM that must be refused (exit 2) before
    anything is submitted."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    try:
        result = harness_cli(
            [
                "-m",
                "hydra/launcher=slurm",
                "hydra.launcher.partition=debug",
                "backend=vllm",
                *overrides,
                f"name={name}",
            ]
        )
        assert result.returncode == 2, result.stderr
        assert not (ROOT / "outputs" / "sweeps" / name / ".submitit").exists()  # nothing submitted
    finally:
        shutil.rmtree(ROOT / "outputs" / "sweeps" / name, ignore_errors=True)
    return result.stderr


def test_a_missing_shard_in_the_hub_cache_is_named_with_the_download_command(tmp_path: Path) -> None:
    fill_cache(tmp_path, SHARDS[:1])
    model = {"name": "tiny", "path": REPO, "revision": None, "gated": True}
    problem = weights_problem(model, str(tmp_path))
    assert problem is not None and "\n" not in problem
    assert SHARDS[1] in problem and f"huggingface-cli download {REPO} --revision main" in problem
    assert f"HF_HOME={tmp_path}" in problem and "gated" in problem
    fill_cache(tmp_path, SHARDS)
    assert weights_problem(model, str(tmp_path)) is None
    assert "revision v2" in (weights_problem({**model, "revision": "v2"}, str(tmp_path)) or "")


def test_a_local_directory_must_hold_every_shard(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": SHARDS[0]}}))
    problem = weights_problem({"name": "local", "path": str(tmp_path)}, None)
    assert problem is not None and SHARDS[0] in problem
    (tmp_path / SHARDS[0]).write_bytes(b"x")
    assert weights_problem({"name": "local", "path": str(tmp_path)}, None) is None


def test_compute_nodes_run_offline_with_the_shared_cache_unless_asked_otherwise() -> None:
    assert weights_environment({"hf_home": "/shared/hf", "offline": True}, on_cluster=True) == {
        "HF_HOME": "/shared/hf",
        "HF_HUB_OFFLINE": "1",
    }
    assert weights_environment({"offline": False}, on_cluster=True) == {}
    assert weights_environment({"offline": True}, on_cluster=False) == {}


@pytest.mark.slurm
def test_a_sweep_with_missing_weights_is_refused_in_one_line_before_anything_is_queued(
    tmp_path: Path,
) -> None:
    stderr = refused_vllm_sweep("weights", "model=llama-3.1-8b,qwen2.5-7b", f"weights.hf_home={tmp_path}")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "meta-llama/Llama-3.1-8B-Instruct" in errors[0] and "gated" in errors[0]
    assert "huggingface-cli download meta-llama/Llama-3.1-8B-Instruct --revision main" in errors[0]
    assert "Traceback" not in stderr


@pytest.mark.vllm
def test_an_offline_job_names_the_missing_weights_instead_of_blaming_the_model_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    pytest.importorskip("vllm", reason="needs vLLM")
    from harness.backends.vllm import VLLMBackend
    from harness.errors import ConfigError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    backend = VLLMBackend({"name": "tiny", "path": REPO, "tool_parser": "hermes"})
    with pytest.raises(ConfigError, match=f"weights of tiny \\({REPO} at revision main\\) are not in"):
        asyncio.run(backend.prepare())


@pytest.mark.slurm
def test_two_engines_that_cannot_share_the_gpus_are_refused_before_submission(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"x")
    stderr = refused_vllm_sweep(
        "engines",
        "model=qwen2.5-7b",
        f"model.path={model_dir}",
        "+user/backend=vllm",
        f"user.backend.model.path={model_dir}",
        "backend.gpu_memory_utilization=0.6",
        "user.backend.gpu_memory_utilization=0.45",
    )
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "(0.6) + user.backend.gpu_memory_utilization (0.45) = 1.05" in line
