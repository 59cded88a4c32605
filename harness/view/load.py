"""Reads every conversation of a sweep or job directory for the viewer, keeping what it can.

A line that is half-written, not JSON or not a conversation record is skipped and listed (the
viewer shows the list), never fatal: a sweep that is still running can be read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.judge.schema import Judgment
from harness.store import CONVERSATIONS, JobDir, find_job_dirs
from harness.store.judgments import read_judgment_log

REQUIRED = ("task_id", "trial")
"""A record needs at least these to be placed; everything else has a fallback."""


@dataclass(frozen=True)
class Skipped:
    path: str
    """Relative to the directory read."""
    line: int | None
    """1-based line number; None when the whole file was unreadable."""
    reason: str


@dataclass
class Job:
    name: str
    """The job directory relative to the directory read (`.` for a job directory itself)."""
    path: Path
    kept: dict[tuple[int, int], int] = field(default_factory=dict)
    """(task, trial) → the line of its latest record: a retry replaces an earlier try."""
    judgments: dict[tuple[int, int], dict[int, dict[str, Any]]] = field(default_factory=dict)
    """(task, trial) → user turn → {emotion, intensity, reason}, from `judgments/<judge>.jsonl`."""
    replaced: int = 0
    """Records superseded by a later record of the same (task, trial)."""

    def records(self) -> Iterator[dict[str, Any]]:
        """The kept records, read again one at a time (a sweep's records need not fit in memory)."""
        lines = set(self.kept.values())
        if not lines:
            return
        with (self.path / CONVERSATIONS).open("rb") as file:
            for number, line in enumerate(file, start=1):
                if number in lines:
                    yield json.loads(line)


@dataclass
class Loaded:
    root: Path
    jobs: list[Job]
    skipped: list[Skipped]

    @property
    def conversations(self) -> int:
        return sum(len(job.kept) for job in self.jobs)


def _job_dirs(root: Path) -> list[Path]:
    """Every job directory at or under `root`, none inside a `report/` (the viewer's own output)."""
    return [d for d in find_job_dirs(root) if "report" not in d.relative_to(root).parts]


def _lines(path: Path, root: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL file with their line numbers; everything else goes to `skipped`."""
    where = path.relative_to(root).as_posix()
    try:
        with path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):  # the writer was stopped mid-line
                    skipped.append(Skipped(where, number, "half-written last line (no newline at its end)"))
                    continue
                try:
                    value = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    skipped.append(Skipped(where, number, f"not JSON ({error})"))
                    continue
                if not isinstance(value, dict):
                    skipped.append(Skipped(where, number, f"not a JSON object ({type(value).__name__})"))
                    continue
                yield number, value
    except OSError as error:
        skipped.append(Skipped(where, None, f"unreadable: {error.strerror or error}"))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _scan_records(job: Job, root: Path, skipped: list[Skipped]) -> None:
    path = job.path / CONVERSATIONS
    if not path.exists():
        return
    where = path.relative_to(root).as_posix()
    for number, record in _lines(path, root, skipped):
        task, trial = _as_int(record.get("task_id")), _as_int(record.get("trial"))
        if task is None or trial is None:
            missing = [k for k in REQUIRED if _as_int(record.get(k)) is None]
            skipped.append(
                Skipped(where, number, f"not a conversation record: no integer {', '.join(missing)}")
            )
            continue
        if job.kept.pop((task, trial), None) is not None:
            job.replaced += 1
        job.kept[(task, trial)] = number


def _read_judgments(
    job_dir: Path, root: Path, skipped: list[Skipped]
) -> dict[tuple[int, int], dict[int, dict[str, Any]]]:
    """The judged turns of the job's judge with the most judgments (the first by hash on a tie):
    `judgments/<judge>.jsonl` as the judge wrote it, read through the store's one reader."""
    reads = {judge: read_judgment_log(JobDir(job_dir).judgments(judge)) for judge in JobDir(job_dir).judges()}
    for read in reads.values():
        where = read.path.relative_to(root).as_posix()
        skipped.extend(Skipped(where, bad.number, bad.reason) for bad in read.bad)
        if read.torn_tail:
            skipped.append(Skipped(where, read.lines + 1, "half-written last line (no newline at its end)"))
    if not reads:
        return {}
    judge = min(reads, key=lambda judge: (-len(reads[judge].records), judge))
    judged: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    for line in reads[judge].records:
        judgment = Judgment.model_validate(line)
        judged[(judgment.task_id, judgment.trial)] = {
            turn.turn: {"emotion": turn.emotion, "intensity": turn.intensity, "reason": turn.reason}
            for turn in judgment.turns or []
        }
    return judged


def load(root: Path) -> Loaded:
    """Every job under `root` (a sweep directory or one job directory): where its records are."""
    skipped: list[Skipped] = []
    jobs = []
    for job_dir in _job_dirs(root):
        job = Job(job_dir.relative_to(root).as_posix(), job_dir)
        _scan_records(job, root, skipped)
        job.judgments = _read_judgments(job_dir, root, skipped)
        jobs.append(job)
    return Loaded(root, jobs, skipped)
