from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from harness.taubench import INSTALL_HINT, taubench_available

REQUIRED_ENV = "TAU_EMOTION_REQUIRE"
"""Space-separated markers (e.g. `vllm slurm`) whose tests must run: a skip of one is a failure."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if taubench_available():
        return
    skip = pytest.mark.skip(reason=INSTALL_HINT)
    for item in items:
        if "taubench" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    required = set(os.environ.get(REQUIRED_ENV, "").split())
    missed = sorted(required & {mark.name for mark in item.iter_markers()})
    if report.skipped and missed and "taubench" not in item.keywords:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRED_ENV} requires the {', '.join(missed)} tests to run, but: {reason}"


@pytest.fixture(autouse=True)
def _wandb_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wandb.mode` defaults to $WANDB_MODE, else offline; W&B tests ask with `wandb.mode=offline`."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
