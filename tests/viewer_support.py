"""A real toy-domain sweep for the viewer's tests and a headless chromium to open it in.

Three jobs of one sweep, paired on the same tasks and trials: control runs a scripted agent
that only knows how to cancel order #A1 (task 0 succeeds, the rest fail), anger runs the oracle
(every task succeeds), frustration runs a scripted agent that writes markup and does nothing
(every task fails). So frustration flips task 0 for the worse and anger flips the rest for the
better, against control.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from harness.job.app import build_job
from harness.job.runner import run_job
from tests.helpers import TOY, compose_config

MARKUP = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> How can I help?'
CANCEL_A1 = [
    {"tool": "find_user_id_by_email", "arguments": {"email": "ada@example.com"}},
    {"tool": "cancel_pending_order", "arguments": {"order_id": "#A1"}},
    {"text": "Your order #A1 is cancelled."},
]
USER = [{"text": "Hi, I need help with my order."}, {"text": "###STOP###"}]
JOBS: dict[str, tuple[str, list[dict[str, Any]] | None]] = {
    "control": ("scripted", CANCEL_A1),
    "anger": ("oracle", None),
    "frustration": ("scripted", [{"text": MARKUP}]),
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def job_dir(sweep: Path, variant: str) -> Path:
    return sweep / "oracle" / "toy-test" / variant / "seed0"


def judge_sweep(sweep: Path) -> Path:
    """Judge every conversation of `sweep` with the scripted judge, through its command line."""
    from tests.judge_support import SCRIPTED_JUDGE, judge_cli

    judged = judge_cli([str(sweep), *SCRIPTED_JUDGE])
    assert judged.returncode == 0, judged.stderr
    return sweep


def make_sweep(sweep: Path, trials: int = 2) -> Path:
    for variant, (backend, agent) in JOBS.items():
        overrides = [f"variant={variant}", f"backend={backend}", "model=oracle", f"env.trials={trials}"]
        cfg = compose_config([*TOY, *overrides, "name=viewer-test", "wandb.mode=disabled"])
        if agent is not None:
            OmegaConf.update(cfg, "backend.agent", agent, merge=False)
            OmegaConf.update(cfg, "backend.user", USER, merge=False)
        asyncio.run(run_job(build_job(cfg, job_dir(sweep, variant))))
    return sweep


def chromium_or_skip() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed (`apt-get install -y chromium`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (`pip install playwright`)")
    return path


def launch_chromium() -> Iterator[Any]:
    """A headless chromium, the system's, driven by playwright."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
