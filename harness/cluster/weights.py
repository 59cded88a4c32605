"""Are a model's weights where an offline compute node will look for them? Asked before submitting.

A preset's `path` is a local directory or a hub id (with `revision`). Compute nodes often have no
internet: jobs run with `HF_HUB_OFFLINE=1` and a shared cache (`weights.hf_home`, set once per
machine in `conf/local/default.yaml`), so every file vLLM loads must be there before the job is
queued. Files are looked up with huggingface_hub's `try_to_load_from_cache`, as the node will.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.extras import require

VLLM_TARGET = "harness.backends.vllm.VLLMBackend"
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "consolidated.safetensors", "pytorch_model.bin")


def hub_cache(hf_home: str | None) -> Path:
    """The hub cache that `HF_HOME=hf_home` (else the environment's) gives huggingface_hub."""
    if os.environ.get("HF_HUB_CACHE") and not hf_home:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = hf_home or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    return Path(home).expanduser() / "hub"


def is_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).expanduser().is_dir()


def missing_file(path: str, revision: str | None, hf_home: str | None) -> tuple[str, str] | None:
    """(where it was looked for, the first missing file) for a model's config and weight shards; None if all there."""
    if is_local(path):
        root = Path(path).expanduser()
        return _first_missing(lambda name: (root / name) if (root / name).is_file() else None, str(root))
    hub = require("vllm", "huggingface_hub", "backend=vllm")
    cache = hub_cache(hf_home)

    def cached(name: str) -> Path | None:
        found = hub.try_to_load_from_cache(path, name, cache_dir=cache, revision=revision)
        return Path(found) if isinstance(found, str) else None

    return _first_missing(cached, str(cache))


def _first_missing(find: Any, where: str) -> tuple[str, str] | None:
    if find("config.json") is None:
        return where, "config.json"
    for index_name in INDEX_FILES:
        if (index := find(index_name)) is not None:
            shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
            for shard in shards:
                if find(shard) is None:
                    return where, shard
            return None
    if any(find(name) is not None for name in SINGLE_FILES):
        return None
    return where, SINGLE_FILES[0]


def weights_problem(model: dict[str, Any], hf_home: str | None, role: str = "model") -> str | None:
    """One line naming the model whose weights are not there, and how to fetch them; None if they are."""
    path, revision = str(model.get("path") or ""), model.get("revision")
    if not path:
        return None
    missing = missing_file(path, revision, hf_home)
    if missing is None:
        return None
    where, name = missing
    if is_local(path):
        return f"{role}.path={path}: {name} is missing from that directory (copy the whole model there)"
    gated = (
        f"; {path} is gated: accept its licence on huggingface.co and set HF_TOKEN first"
        if model.get("gated")
        else ""
    )
    home = f"HF_HOME={hf_home} " if hf_home else ""
    return (
        f"weights of {model.get('name')} ({path} at revision {revision or 'main'}) are not in {where} "
        f"({name} missing), and compute nodes run offline: on the login node run "
        f"`{home}huggingface-cli download {path} --revision {revision or 'main'}`{gated}"
    )


def job_weights_problem(cfg: Any) -> str | None:
    """The first vLLM model of a job config (agent's, then the user's) whose weights are missing."""
    weights = cfg.get("weights") or {}
    if not weights.get("check", True):
        return None
    for role, backend in (
        ("model", cfg.get("backend")),
        ("user.backend.model", (cfg.get("user") or {}).get("backend")),
    ):
        if isinstance(backend, dict) and backend.get("_target_") == VLLM_TARGET:
            problem = weights_problem(backend.get("model") or {}, weights.get("hf_home"), role)
            if problem:
                return problem
    return None


def engines_problem(cfg: Any) -> str | None:
    """Two vLLM engines in one job (agent and `+user/backend=vllm`) whose memory shares do not fit."""
    from harness.backends.vllm import memory_split_problem

    agent, user = cfg.get("backend") or {}, (cfg.get("user") or {}).get("backend") or {}
    if not all(isinstance(b, dict) and b.get("_target_") == VLLM_TARGET for b in (agent, user)):
        return None
    return memory_split_problem(
        float(agent.get("gpu_memory_utilization", 0.9)), float(user.get("gpu_memory_utilization", 0.9))
    )


def weights_environment(weights: Any, on_cluster: bool) -> dict[str, str]:
    """HF_HOME (the shared cache) and, on compute nodes unless `offline: false`, HF_HUB_OFFLINE=1."""
    env = {}
    if weights.get("hf_home"):
        env["HF_HOME"] = str(Path(str(weights["hf_home"])).expanduser())
    if on_cluster and weights.get("offline", True):
        env["HF_HUB_OFFLINE"] = "1"
    return env
