"""Oracle sweeps on the toy domain to judge, and the judge's command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import run_module, run_toy_job

SCRIPTED_JUDGE = ["backend=scripted_judge", "model=oracle", "wandb.mode=disabled"]


def oracle_sweep(
    sweep: Path, variants: tuple[str, ...] = ("control", "anger"), trials: int = 1
) -> list[Path]:
    """One toy oracle job per variant under `sweep`, laid out as a Hydra sweep is."""
    jobs = []
    for variant in variants:
        job = sweep / "oracle" / "toy-test" / variant / "seed0"
        run_toy_job(job, [f"variant={variant}", f"env.trials={trials}", "name=judged"])
        jobs.append(job)
    return jobs


def judge_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_module("harness.judge", *args, timeout=timeout)
