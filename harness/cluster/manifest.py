"""The sweep manifest: every job of a sweep directory, its overrides and its state.

Jobs record their own state in `<job dir>/job_state.json`; `manifest.json` in the sweep
directory is recomputed from those files, so it is right even after the submitting process died.
`python -m harness.sweep outputs/sweeps/<name>` recomputes and prints it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ExitCode
from harness.job.retry import describe_missing
from harness.store import (
    CONVERSATIONS,
    ERROR_FILE,
    JOB_FILE,
    SUMMARY,
    DamagedFile,
    job_progress,
    read_json_object,
    write_json,
)

MANIFEST = "manifest.json"
JOB_STATE = "job_state.json"
STATES = ("done", "incomplete", "failed", "running", "pending", "missing")
State = Literal["done", "incomplete", "failed", "running", "pending", "missing"]
SlurmQueue = dict[str, tuple[str, str]]
"""SLURM job id -> (state, reason), as `squeue` lists them."""


@dataclass(frozen=True)
class PlannedJob:
    dir: str
    """The job's directory, relative to the sweep directory."""
    overrides: list[str]


def slurm_job_id() -> str | None:
    """This process's SLURM job id, as `squeue` shows it (`<array job>_<task>` for array jobs)."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def record_job_start(job_dir: Path) -> None:
    previous = read_json(job_dir / JOB_STATE) or {}
    write_json(
        job_dir / JOB_STATE,
        {
            "state": "running",
            "attempt": int(previous.get("attempt", 0)) + 1,
            "requeues": int(previous.get("requeues", 0)),
            "slurm_job_id": slurm_job_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
        },
    )


def record_job_submitted(job_dir: Path, slurm_job_id: str) -> None:
    """The launcher submitted this job to SLURM; it is pending until it starts."""
    previous = read_json(job_dir / JOB_STATE) or {}
    if previous.get("slurm_job_id") == slurm_job_id:
        return  # it started already and keeps its own state
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        job_dir / JOB_STATE,
        {
            "state": "pending",
            "attempt": int(previous.get("attempt", 0)),
            "requeues": 0,
            "slurm_job_id": slurm_job_id,
        },
    )


def record_job_end(job_dir: Path, succeeded: bool, error: str | None = None) -> None:
    """`done`, or `incomplete` when the job's summary says conversations are left, or `failed`."""
    state = read_json(job_dir / JOB_STATE) or {}
    ended: State = "failed"
    if succeeded:
        summary = read_json(job_dir / SUMMARY) or {}
        ended = "incomplete" if summary.get("state") == "incomplete" else "done"
    state.update(state=ended, ended=time.time(), error=error)
    state.pop("note", None)
    write_json(job_dir / JOB_STATE, state)


def refresh_manifest(
    sweep_dir: Path, planned: Iterable[PlannedJob] = (), command: str | None = None
) -> dict[str, Any]:
    """Recompute `manifest.json` from the job directories; `planned` jobs join those already listed."""
    previous = read_json(sweep_dir / MANIFEST) or {}
    overrides: dict[str, list[str]] = {job["dir"]: job["overrides"] for job in previous.get("jobs", [])}
    for job in planned:
        overrides[job.dir] = list(job.overrides)
    for state_file in sweep_dir.glob(f"**/{JOB_STATE}"):
        overrides.setdefault(str(state_file.parent.relative_to(sweep_dir)), [])
    queue = functools.cache(slurm_queue)
    checked = {job["dir"]: job for job in previous.get("jobs", []) if "checked" in job}
    jobs = [_job_entry(sweep_dir, rel, overrides[rel], queue, checked.get(rel)) for rel in sorted(overrides)]
    manifest = {
        "sweep_dir": str(sweep_dir),
        "command": command or previous.get("command"),
        "updated": time.time(),
        "counts": {state: sum(job["state"] == state for job in jobs) for state in STATES},
        "jobs": jobs,
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(sweep_dir / MANIFEST, manifest)
    return manifest


def _job_entry(
    sweep_dir: Path,
    rel: str,
    overrides: list[str],
    queue: Callable[[], SlurmQueue | None],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    job_dir = sweep_dir / rel
    recorded = read_json(job_dir / JOB_STATE) or {}
    state: State = recorded.get("state", "missing")
    note = recorded.get("note")
    reason = None
    if state in ("running", "pending"):
        held = _slurm_status(recorded, queue)
        if held is False:
            state, note = "missing", "interrupted: its process or SLURM job is gone"
        elif isinstance(held, tuple):
            state = "pending" if held[0] == "PENDING" else "running"
            reason = held[1] if state == "pending" else None
    checked = _files_stamp(job_dir)
    if previous is not None and previous.get("checked") == checked and "progress" in previous:
        on_disk, unfinished = previous["conversations_on_disk"], previous["progress"]
    else:
        on_disk, unfinished = _read_progress(job_dir)
    if unfinished.startswith(DAMAGED):
        state, note = "failed", unfinished.removeprefix(DAMAGED)
    elif state == "done" and unfinished:
        state, note = "incomplete", unfinished  # the records on disk say what is finished
    entry: dict[str, Any] = {
        "dir": rel,
        "overrides": overrides,
        "state": state,
        "conversations_on_disk": on_disk,
        "progress": unfinished,
        "checked": checked,
        "slurm_job_id": recorded.get("slurm_job_id"),
        "attempt": recorded.get("attempt", 0),
    }
    if reason:
        entry["slurm_reason"] = reason
    if state in ("done", "incomplete"):
        summary = read_json(job_dir / SUMMARY) or {}
        for key in ("average_reward", "scored", "missing", "missing_by_reason", "user_errors"):
            entry[key] = summary.get(key)
        entry["job_state"] = summary.get("state")
    if state == "failed":
        entry["error"] = _first_line(job_dir / ERROR_FILE) or recorded.get("error") or note
    if note and state != "done":
        entry["note"] = note
    return entry


DAMAGED = "damaged: "


def _read_progress(job_dir: Path) -> tuple[int, str]:
    """(finished records, what is not finished: empty when complete, `damaged: ...` for a bad job.json)."""
    try:
        progress = job_progress(job_dir)
    except DamagedFile as error:
        return 0, f"{DAMAGED}{error}"
    if progress.complete or (progress.wanted is None and not progress.damaged):  # None: an older job.json
        return len(progress.finished), ""
    return len(progress.finished), progress.describe()


def _files_stamp(job_dir: Path) -> list[int]:
    """Size and modification time of the files progress is read from, to skip rereading them."""
    stamp = []
    for name in (CONVERSATIONS, JOB_FILE):
        try:
            info = (job_dir / name).stat()
        except FileNotFoundError:
            stamp += [-1, -1]
        else:
            stamp += [info.st_size, info.st_mtime_ns]
    return stamp


def _slurm_status(recorded: dict[str, Any], queue: Callable[[], SlurmQueue | None]) -> tuple[str, str] | bool:
    """What SLURM says of the job, True where it cannot be asked, False when the job is gone.

    `queue` lists SLURM's jobs; it is called only for a job that ran under SLURM.
    """
    job_id = recorded.get("slurm_job_id")
    if job_id and (live := queue()) is not None:
        return live.get(str(job_id), False)
    if not job_id and recorded.get("host") == socket.gethostname() and recorded.get("pid"):
        try:
            os.kill(int(recorded["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return True  # no way to tell from here: trust the record


def slurm_queue() -> SlurmQueue | None:
    """Jobs SLURM still holds (pending, running, requeued) with state and reason; None without `squeue`."""
    if shutil.which("squeue") is None:
        return None
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--array", "--format=%i|%T|%r"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    queue: SlurmQueue = {}
    for line in listed.splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job_id:
            queue[job_id] = (state, reason)
    return queue


def _first_line(path: Path) -> str | None:
    if not path.exists():
        return None
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[0] if lines else None


def read_json(path: Path) -> dict[str, Any] | None:
    """A state, manifest or summary file; each is rewritten whole, so a damaged one counts as absent."""
    try:
        return read_json_object(path)
    except DamagedFile:
        return None


def format_manifest(manifest: dict[str, Any]) -> str:
    counts = manifest["counts"]
    lines = [
        f"{manifest['sweep_dir']}: {len(manifest['jobs'])} jobs: "
        + ", ".join(f"{counts[state]} {state}" for state in STATES if counts.get(state))
    ]
    for job in manifest["jobs"]:
        lines.append(f"  {job['state']:<10} {job['dir']}  {_detail(job)}")
    if counts["done"] < len(manifest["jobs"]) and manifest.get("command"):
        lines.append(f"finish the work (finished conversations are kept): {manifest['command']}")
    return "\n".join(lines)


def _detail(job: dict[str, Any]) -> str:
    if job["state"] == "done":
        detail = f"average reward {_reward(job)}"
        if job.get("job_state") == "accepted_incomplete" or job.get("user_errors"):
            detail += f"; {describe_missing(job)}"
            if job.get("job_state") == "accepted_incomplete":
                detail += " (accepted as final)"
        return detail
    if job["state"] == "incomplete":
        if job.get("job_state") != "incomplete" and job.get("note"):  # the records disagree with its summary
            return f"{job['note']}; average reward {_reward(job)} so far"
        return f"{describe_missing(job)}; average reward {_reward(job)} so far"
    if job["state"] == "failed":
        return str(job.get("error") or "failed")
    detail = f"{job['conversations_on_disk']} conversations on disk"
    if job.get("slurm_reason"):
        detail = f"SLURM job {job['slurm_job_id']} pending ({job['slurm_reason']}), {detail}"
    if job.get("note"):
        detail += f" ({job['note']})"
    return detail


def _reward(job: dict[str, Any]) -> str:
    return "n/a" if job.get("average_reward") is None else str(job["average_reward"])


def exit_code(manifest: dict[str, Any]) -> ExitCode:
    """OK when every job is done, FAILED when one failed, else INCOMPLETE (work left to finish)."""
    counts = manifest["counts"]
    if counts["done"] == len(manifest["jobs"]):
        return ExitCode.OK
    return ExitCode.FAILED if counts["failed"] else ExitCode.INCOMPLETE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.sweep",
        description="Recompute and print a sweep's manifest. Exit status: 0 every job is done, "
        "1 a job failed, 3 work is left (incomplete, pending, running or missing jobs).",
    )
    parser.add_argument("sweep_dir", type=Path, help="e.g. outputs/sweeps/<name>")
    parser.add_argument("--json", action="store_true", help="print manifest.json instead of a table")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    manifest = refresh_manifest(args.sweep_dir)
    print(json.dumps(manifest, indent=2) if args.json else format_manifest(manifest))
    return int(exit_code(manifest))
