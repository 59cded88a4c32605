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

from harness.store import CONVERSATIONS, find_job_dirs

JUDGMENTS_GLOB = "judgments*.jsonl"
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
    """(task, trial) → user turn → {emotion, intensity, reason}, from `judgments*.jsonl`."""
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
    judged: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    for path in sorted(job_dir.glob(JUDGMENTS_GLOB)):
        where = path.relative_to(root).as_posix()
        for number, line in _lines(path, root, skipped):
            task, trial = _as_int(line.get("task_id")), _as_int(line.get("trial"))
            turns = line.get("turns")
            if turns is None and "turn" in line:
                turns = [line]  # one line per judged turn
            if task is None or trial is None or not isinstance(turns, list):
                skipped.append(
                    Skipped(where, number, "not a judgment: needs task_id, trial and a turns list")
                )
                continue
            per_turn = judged.setdefault((task, trial), {})
            for turn in turns:
                index = _as_int(turn.get("turn")) if isinstance(turn, dict) else None
                if index is None:
                    skipped.append(Skipped(where, number, "a judged turn without an integer turn"))
                    continue
                per_turn[index] = {
                    key: turn[key] for key in ("emotion", "intensity", "reason") if turn.get(key) is not None
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
