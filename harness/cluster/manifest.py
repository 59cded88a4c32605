"""The sweep manifest: every job of a sweep directory, its overrides and its state.

A job's state is `harness.store.job_state` of its directory (the report's and the runner's
too); what only the launcher knows comes on top: `pending` (queued in SLURM), `running` (its
process or SLURM job is alive: `<job dir>/job_state.json`) and `missing` (planned or launched,
nothing on disk). `manifest.json` in the sweep directory is recomputed from the job
directories, so it is right even after the submitting process died.
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

from pydantic import BaseModel

from harness.errors import ExitCode
from harness.job.retry import describe_missing
from harness.store import (
    DamagedFile,
    JobDir,
    SweepDir,
    job_state,
    read_json_object,
    write_json,
)
from harness.store.progress import FINISHED_STATES

State = Literal[
    "complete", "accepted_incomplete", "incomplete", "failed", "damaged", "running", "pending", "missing"
]
STATES: tuple[State, ...] = (
    "complete",
    "accepted_incomplete",
    "incomplete",
    "failed",
    "damaged",
    "running",
    "pending",
    "missing",
)
LaunchState = Literal["pending", "running", "ended", "failed"]
"""`job_state.json`'s `state`: what the launcher and the sweep callback saw of the job's process."""


class ManifestEntry(BaseModel):
    """One job of `manifest.json`."""

    dir: str
    overrides: list[str]
    state: State
    conversations_on_disk: int
    progress: str
    """The job state's one-line detail (empty when complete)."""
    slurm_job_id: str | None = None
    attempt: int = 0
    slurm_reason: str | None = None
    average_reward: float | None = None
    scored: int | None = None
    missing: int | None = None
    missing_by_reason: dict[str, int] | None = None
    user_errors: int | None = None
    job_state: str | None = None
    """The summary's own state (`complete`, `incomplete`, `accepted_incomplete`)."""
    error: str | None = None
    note: str | None = None


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
    path = JobDir(job_dir).launch_state
    previous = read_json(path) or {}
    write_json(
        path,
        {
            "state": "running",
            "attempt": int(previous.get("attempt", 0)) + 1,
            "requeues": int(previous.get("requeues", 0)),
            "engine_death_requeues": int(previous.get("engine_death_requeues", 0)),
            "slurm_job_id": slurm_job_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
        },
    )


def record_job_submitted(job_dir: Path, slurm_job_id: str) -> None:
    """The launcher submitted this job to SLURM; it is pending until it starts."""
    path = JobDir(job_dir).launch_state
    previous = read_json(path) or {}
    if previous.get("slurm_job_id") == slurm_job_id:
        return  # it started already and keeps its own state
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        path,
        {
            "state": "pending",
            "attempt": int(previous.get("attempt", 0)),
            "requeues": 0,
            "slurm_job_id": slurm_job_id,
        },
    )


def record_job_end(job_dir: Path, succeeded: bool, error: str | None = None) -> None:
    """The job's process ended (`ended`) or raised (`failed`); its state is read from its files."""
    path = JobDir(job_dir).launch_state
    state = read_json(path) or {}
    ended: LaunchState = "ended" if succeeded else "failed"
    state.update(state=ended, ended=time.time(), error=error)
    state.pop("note", None)
    write_json(path, state)


def refresh_manifest(
    sweep_dir: Path, planned: Iterable[PlannedJob] = (), command: str | None = None
) -> dict[str, Any]:
    """Recompute `manifest.json` from the job directories; `planned` jobs join those already listed."""
    sweep = SweepDir(sweep_dir)
    previous = read_json(sweep.manifest) or {}
    overrides: dict[str, list[str]] = {job["dir"]: job["overrides"] for job in previous.get("jobs", [])}
    for job in planned:
        overrides[job.dir] = list(job.overrides)
    found = [path.parent for path in sweep.launch_states()] + [d.path for d in sweep.job_dirs()]
    for job_dir in found:
        overrides.setdefault(str(job_dir.relative_to(sweep_dir)), [])
    queue = functools.cache(slurm_queue)
    jobs = [
        _job_entry(sweep_dir, rel, overrides[rel], queue).model_dump(exclude_none=True)
        for rel in sorted(overrides)
    ]
    manifest = {
        "sweep_dir": str(sweep_dir),
        "command": command or previous.get("command"),
        "updated": time.time(),
        "counts": {state: sum(job["state"] == state for job in jobs) for state in STATES},
        "jobs": jobs,
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(sweep.manifest, manifest)
    return manifest


def _job_entry(
    sweep_dir: Path, rel: str, overrides: list[str], queue: Callable[[], SlurmQueue | None]
) -> ManifestEntry:
    directory = JobDir(sweep_dir / rel)
    recorded = read_json(directory.launch_state) or {}
    status = job_state(directory.path)
    state: State = "missing" if status.state == "not_started" else status.state
    note, reason = recorded.get("note"), None
    if state != "running" and recorded.get("state") in ("running", "pending"):
        held = _slurm_status(recorded, queue)
        if held is False:
            note = "interrupted: its process or SLURM job is gone"
        elif isinstance(held, tuple):
            state = "pending" if held[0] == "PENDING" else "running"
            reason = held[1] if state == "pending" else None
        else:
            state = recorded["state"]  # no way to tell from here: trust the record
    summary = status.summary
    finished = len(status.progress.finished) if status.progress else 0
    entry = ManifestEntry(
        dir=rel,
        overrides=overrides,
        state=state,
        conversations_on_disk=finished,
        progress=status.detail,
        slurm_job_id=recorded.get("slurm_job_id"),
        attempt=recorded.get("attempt", 0),
        slurm_reason=reason,
    )
    if summary is not None and (state in FINISHED_STATES or state == "incomplete"):
        entry.average_reward, entry.scored, entry.missing = (
            summary.average_reward,
            summary.scored,
            summary.missing,
        )
        entry.missing_by_reason, entry.user_errors = summary.missing_by_reason, summary.user_errors
        entry.job_state = summary.state
    if state in ("failed", "damaged"):
        entry.error = status.detail if state == "damaged" else directory.error_line() or recorded.get("error")
    if note and state not in FINISHED_STATES:
        entry.note = note
    return entry


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
    if _finished(counts) < len(manifest["jobs"]) and manifest.get("command"):
        lines.append(f"finish the work (finished conversations are kept): {manifest['command']}")
    return "\n".join(lines)


def _detail(job: dict[str, Any]) -> str:
    if job["state"] in FINISHED_STATES:
        detail = f"average reward {_reward(job)}"
        if job.get("job_state") == "accepted_incomplete" or job.get("user_errors"):
            detail += f"; {describe_missing(job)}"
            if job.get("job_state") == "accepted_incomplete":
                detail += " (accepted as final)"
        return detail
    if job["state"] == "incomplete":
        if job.get("job_state") != "incomplete":  # the records disagree with its summary, or it has none
            return f"{job['progress']}; average reward {_reward(job)} so far"
        return f"{describe_missing(job)}; average reward {_reward(job)} so far"
    if job["state"] in ("failed", "damaged"):
        return str(job.get("error") or job["state"])
    detail = f"{job['conversations_on_disk']} conversations on disk"
    if job.get("slurm_reason"):
        detail = f"SLURM job {job['slurm_job_id']} pending ({job['slurm_reason']}), {detail}"
    if job.get("note"):
        detail += f" ({job['note']})"
    return detail


def _reward(job: dict[str, Any]) -> str:
    return "n/a" if job.get("average_reward") is None else str(job["average_reward"])


def exit_code(manifest: dict[str, Any]) -> ExitCode:
    """OK when every job is finished, FAILED when one failed, else INCOMPLETE (work left to finish)."""
    counts = manifest["counts"]
    if _finished(counts) == len(manifest["jobs"]):
        return ExitCode.OK
    return ExitCode.FAILED if counts["failed"] else ExitCode.INCOMPLETE


def _finished(counts: dict[str, int]) -> int:
    return sum(counts.get(state, 0) for state in FINISHED_STATES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.sweep",
        description="Recompute and print a sweep's manifest. Exit status: 0 every job is complete "
        "(or accepted incomplete), 1 a job failed, 3 work is left (incomplete, damaged, pending, running "
        "or missing jobs).",
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
