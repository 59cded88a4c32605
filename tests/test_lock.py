"""The one job-directory lock: exclusive where flock works, skipped (not fatal) where it does not."""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path
from typing import Any

import pytest

from harness.store import lock
from harness.store.layout import JOB_LOCK, JobDir
from tests.helpers import run_toy_job


def test_a_held_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    fd = lock.acquire(tmp_path / "x.lock")
    assert fd is not None
    with pytest.raises(lock.Locked):
        lock.acquire(tmp_path / "x.lock", wait=False)
    lock.release(fd)
    lock.release(lock.acquire(tmp_path / "x.lock", wait=False))


def test_a_job_runs_where_the_file_system_has_no_flock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_locks(fd: int, operation: int) -> Any:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    summary = run_toy_job(tmp_path, ["backend=oracle", "env.tasks=[0]"])
    assert summary["state"] == "complete" and (tmp_path / JOB_LOCK).exists()
    assert sum("no file locks" in r.getMessage() for r in caplog.records) <= 1  # said once, not per lock


def test_a_held_job_directory_is_seen_as_held(tmp_path: Path) -> None:
    with JobDir(tmp_path).hold(), pytest.raises(lock.Locked):
        lock.acquire(tmp_path / JOB_LOCK, wait=False)
    assert not JobDir(tmp_path).held()
