"""The sweep driver's own lines: pending reasons as SLURM gives them (or unknown), sacct said once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from harness.cluster import slurm_launcher
from harness.cluster.slurm_launcher import OnceASweep, watch_pending
from harness.errors import ExitCode, jobs_failed_exit_code


class WaitingJob:
    job_id = "41"

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0


def test_a_pending_job_without_a_reason_is_shown_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reasons = iter(["None", "None", "Priority"])
    queue: Any = lambda: {"41": ("PENDING", next(reasons, "Priority"))}  # noqa: E731
    monkeypatch.setattr(slurm_launcher, "slurm_queue", queue)
    monkeypatch.setattr(slurm_launcher, "POLL_S", 0.0)
    monkeypatch.setattr(slurm_launcher, "refresh_quietly", lambda sweep_dir: None)
    with caplog.at_level(logging.INFO):
        watch_pending([WaitingJob(3)], ["model/retail-test/control/seed0"], tmp_path)
    shown = [r.getMessage() for r in caplog.records if "is pending" in r.getMessage()]
    assert shown == [
        "SLURM job 41 (model/retail-test/control/seed0) is pending: unknown",
        "SLURM job 41 (model/retail-test/control/seed0) is pending: Priority",
    ]


def test_sacct_errors_are_said_once_a_sweep(caplog: pytest.LogCaptureFixture) -> None:
    submitit_log = logging.getLogger("submitit")
    quiet = OnceASweep()
    submitit_log.addFilter(quiet)
    try:
        with caplog.at_level(logging.WARNING):
            for call in range(1, 7):
                submitit_log.warning(
                    f"Call #{call} - Bypassing sacct error Command '['sacct']' returned non-zero exit "
                    "status 1., status may be inaccurate."
                )
    finally:
        submitit_log.removeFilter(quiet)
    lines = [r.getMessage() for r in caplog.records if "sacct" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("sacct is not available here")


def test_the_exit_status_says_how_many_jobs_failed() -> None:
    assert jobs_failed_exit_code(1) == ExitCode.JOBS_FAILED + 1 == 65
    assert jobs_failed_exit_code(3) - ExitCode.JOBS_FAILED == 3
    assert jobs_failed_exit_code(500) == 127
