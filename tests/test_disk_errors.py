"""A read-only or full output disk: one line naming the path and the cause, nothing lost, a rerun finishes."""

from __future__ import annotations

import collections
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.store import CONVERSATIONS, ERROR_FILE, SUMMARY
from tests.helpers import ROOT, TOY, harness_cli

ARGS = [*TOY, "env.trials=4"]  # 20 conversations, about 70 kB of records


def _mount(where: Path, options: str) -> bool:
    if shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@contextmanager
def tiny_filesystem(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `where` (root with mount rights only: skipped elsewhere)."""
    if not _mount(where, options):
        pytest.skip("needs `mount -t tmpfs` (root in a machine or container that allows it)")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def _keys(job: Path) -> collections.Counter[tuple[int, int]]:
    lines = (job / CONVERSATIONS).read_text().splitlines()
    return collections.Counter((r["task_id"], r["trial"]) for r in map(json.loads, lines))


def _assert_finished_after_rerun(job: Path, before: bytes) -> None:
    rerun = harness_cli([*ARGS, f"hydra.run.dir={job}"])
    assert rerun.returncode == 0, rerun.stderr
    finished = before[: before.rfind(b"\n") + 1]  # a line cut short by the full disk is redone
    assert (job / CONVERSATIONS).read_bytes().startswith(finished)
    keys = _keys(job)
    assert len(keys) == 20 and set(keys.values()) == {1}
    assert json.loads((job / SUMMARY).read_text())["conversations"] == 20


def test_a_read_only_output_directory_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if os.geteuid() == 0:  # root writes through permission bits: use a read-only filesystem
        context = tiny_filesystem(disk, "ro,size=1m")
    else:
        disk.mkdir()
        disk.chmod(0o555)
        context = _chmod_back(disk)
    with context:
        job = disk / "job"
        result = harness_cli([*ARGS, f"hydra.run.dir={job}"])
        assert result.returncode == ExitCode.CONFIG
        line = _one_error_line(result)
        assert line.startswith(f"error: cannot write {job}: ")
        assert "Read-only file system" in line or "Permission denied" in line
        assert not job.exists()
        if os.geteuid() == 0:
            _remount(disk, "rw")
        else:
            disk.chmod(0o755)
        _assert_finished_after_rerun(job, b"")


@contextmanager
def _chmod_back(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        path.chmod(0o755)


def test_a_full_disk_is_one_line_and_a_rerun_recovers_every_conversation(tmp_path: Path) -> None:
    with tiny_filesystem(tmp_path / "disk", "size=64k") as disk:
        job = disk / "job"
        result = harness_cli([*ARGS, f"hydra.run.dir={job}"])
        assert result.returncode == ExitCode.FAILED
        assert _one_error_line(result) == (
            f"error: cannot write {job / CONVERSATIONS}: No space left on device "
            "(free space or fix the disk, then rerun: finished conversations are kept)"
        )
        error = job / ERROR_FILE
        assert not error.exists() or error.read_text().startswith("cannot write")  # never left empty
        before = (job / CONVERSATIONS).read_bytes()
        assert 0 < before.count(b"\n") < 20
        _remount(disk, "size=4m")
        _assert_finished_after_rerun(job, before)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


def test_a_write_the_system_refuses_is_one_line_and_error_txt_says_it(tmp_path: Path) -> None:
    """Runs anywhere: a file-size limit makes the kernel refuse writes past 40 kB, as a full disk would."""
    job = tmp_path / "job"
    result = subprocess.run(
        [sys.executable, "-m", "harness", *ARGS, f"hydra.run.dir={job}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == ExitCode.FAILED
    line = _one_error_line(result)
    assert line.startswith(f"error: cannot write {job / CONVERSATIONS}: File too large")
    assert (job / ERROR_FILE).read_text().splitlines()[0] == line.removeprefix("error: ")
    before = (job / CONVERSATIONS).read_bytes()
    assert 0 < before.count(b"\n") < 20
    _assert_finished_after_rerun(job, before)
