from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from harness.domains.tau2.loader import INSTALL_HINT as TAU2_INSTALL_HINT
from harness.domains.tau2.loader import tau2_available
from harness.domains.taubench.loader import INSTALL_HINT, taubench_available

REQUIRED_ENV = "TAU_EMOTION_REQUIRE"
"""Space-separated markers (e.g. `vllm slurm`) whose tests must run: a skip of one is a failure."""


def _tau2_missing() -> str | None:
    if not tau2_available():
        return TAU2_INSTALL_HINT
    if not os.environ.get("TAU2_DATA_DIR"):
        return "TAU2_DATA_DIR is not set: point it at τ²-bench's `data` folder"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {"taubench": None if taubench_available() else INSTALL_HINT, "tau2": _tau2_missing()}
    for marker, reason in missing.items():
        if reason is None:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    required = set(os.environ.get(REQUIRED_ENV, "").split())
    missed = sorted(required & {mark.name for mark in item.iter_markers()})
    if (
        report.skipped
        and missed
        and not item.get_closest_marker("taubench")
        and not item.get_closest_marker("tau2")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRED_ENV} requires the {', '.join(missed)} tests to run, but: {reason}"


@pytest.fixture(autouse=True)
def _wandb_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wandb.mode` defaults to $WANDB_MODE, else offline; W&B tests ask with `wandb.mode=offline`."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
