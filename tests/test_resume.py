"""Killing a job loses no finished conversation; a rerun redoes none of them."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.store import CONVERSATIONS
from tests.helpers import ROOT, TOY, read_jsonl, run_toy_job


def _keys(path: Path) -> collections.Counter[tuple[int, int]]:
    return collections.Counter((r["task_id"], r["trial"]) for r in read_jsonl(path))


def test_a_killed_job_resumes_without_losing_or_redoing_conversations(tmp_path: Path) -> None:
    args = [*TOY, "env.trials=4", "concurrency=2", "backend.delay_s=0.05", f"hydra.run.dir={tmp_path}"]
    process = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=ROOT)
    log = tmp_path / CONVERSATIONS
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(log.read_bytes().splitlines()) < 5):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = read_jsonl(log)
    assert 5 <= len(before) < 20, "the job must be killed half-way"

    rerun = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    after = read_jsonl(log)
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    counts = _keys(log)
    assert len(counts) == 20 and set(counts.values()) == {1}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["average_reward"] == 1.0 and summary["conversations"] == 20


def test_a_half_written_last_line_is_ignored_and_redone(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["env.trials=2"])
    log = tmp_path / CONVERSATIONS
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:6]) + lines[6][:40])  # killed while writing the 7th record
    summary = run_toy_job(tmp_path, ["env.trials=2"])
    assert summary["conversations"] == 10 and summary["average_reward"] == 1.0
    assert set(_keys(log).values()) == {1}


def test_a_rerun_of_a_finished_job_runs_nothing(tmp_path: Path) -> None:
    run_toy_job(tmp_path)
    first = (tmp_path / CONVERSATIONS).read_bytes()
    run_toy_job(tmp_path)
    assert (tmp_path / CONVERSATIONS).read_bytes() == first


def test_more_trials_later_only_adds_the_new_ones(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["env.trials=1"])
    summary = run_toy_job(tmp_path, ["env.trials=3"])
    assert summary["conversations"] == 15 and set(_keys(tmp_path / CONVERSATIONS).values()) == {1}
    assert summary["pass_hat_k"] == {"1": 1.0, "2": 1.0, "3": 1.0}


def test_a_different_job_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["variant=control"])
    with pytest.raises(ConfigError, match="variant"):
        run_toy_job(tmp_path, ["variant=anger"])
