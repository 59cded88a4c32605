"""Shared helpers: compose the real config, point it at the toy domain, run jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness.app import build_job
from harness.runner import run_job

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TOY = ["env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy", "progress=false"]


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def run_toy_job(out: Path, overrides: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    cfg = compose_config([*TOY, *overrides])
    return asyncio.run(run_job(build_job(cfg, out)))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def harness_cli(args: list[str], cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
