"""How far a job got and what state it is in, read from its directory: the one `job_state()`.

The report, the manifest, the runner's resume and W&B's progress all ask this module; nobody
else decides whether a job is finished.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from harness.episode.record import RECORD_SCHEMA, ConversationRecord
from harness.episode.types import Termination
from harness.store.files import DamagedFile, read_model, read_model_or_none
from harness.store.jsonl import BadLine, quarantined_count, read_jsonl_records
from harness.store.layout import CONVERSATIONS, JobDir
from harness.store.models import JobFile, Key, Summary

State = Literal[
    "complete", "accepted_incomplete", "incomplete", "running", "failed", "damaged", "not_started"
]
STATES: tuple[State, ...] = (
    "complete",
    "accepted_incomplete",
    "incomplete",
    "running",
    "failed",
    "damaged",
    "not_started",
)
FINISHED_STATES = frozenset({"complete", "accepted_incomplete"})
"""States whose results are final (a rerun has nothing to do)."""


def read_job_file(job_dir: Path) -> JobFile | None:
    """The job's `job.json`, None when absent; a damaged one is a `DamagedFile` naming the fix."""
    path = JobDir(job_dir).job_file
    fix = (
        f"move it away (mv {path} {path}.damaged) and rerun the job's command to rewrite it; "
        "its finished conversations are kept"
    )
    return read_model(path, JobFile, fix)


def read_summary(job_dir: Path) -> Summary | None:
    """`summary.json`, derived from the conversations: a damaged one counts as not written yet."""
    return read_model_or_none(JobDir(job_dir).summary, Summary)


def read_conversations(path: Path) -> list[ConversationRecord]:
    """Every good record in the file; damaged lines and a half-written last line are left out."""
    return cast(list[ConversationRecord], read_jsonl_records(path, RECORD_SCHEMA).records)


def latest_by_key(records: Iterable[ConversationRecord]) -> dict[Key, ConversationRecord]:
    """The last record of each (task, trial): a rerun's retry replaces an infrastructure error."""
    latest: dict[Key, ConversationRecord] = {}
    for record in records:
        latest[(record["task_id"], record["trial"])] = record
    return latest


def wanted_records(job_dir: Path) -> list[ConversationRecord]:
    """The latest record of each (task, trial) the job's latest run asked for, in the order it ran
    them (trial by trial, tasks as job.json lists them): the order of its summary and results export."""
    job = read_job_file(job_dir)
    records = latest_by_key(read_conversations(JobDir(job_dir).conversations))
    if job is None or job.tasks is None or job.trials is None:
        return list(records.values())
    return [records[(t, k)] for k in range(job.trials) for t in job.tasks if (t, k) in records]


@dataclass(frozen=True)
class JobProgress:
    """How far a job got, from the records on disk (never from `summary.json`)."""

    wanted: set[Key] | None
    """The (task, trial) pairs the job's latest run asked for; None when job.json does not say."""
    records: dict[Key, ConversationRecord]
    """The latest good record of each (task, trial) on disk."""
    damaged: list[BadLine]
    """Damaged lines still in conversations.jsonl (the next run sets them aside and redoes them)."""
    set_aside: int
    """Lines already moved to conversations.jsonl.quarantine."""

    @property
    def finished(self) -> set[Key]:
        return {key for key, r in self.records.items() if not Termination(r["termination"]).redo_on_resume}

    @property
    def to_redo(self) -> set[Key]:
        """Wanted pairs with no finished record: missing, damaged or ended by an infrastructure error."""
        return (self.wanted or set(self.records)) - self.finished

    @property
    def complete(self) -> bool:
        return self.wanted is not None and not self.damaged and not self.to_redo

    def describe(self) -> str:
        """One line, e.g. `3 of 10 conversations not finished; 1 damaged line`; empty when complete."""
        parts = []
        if self.wanted is None:
            parts.append("job.json does not list its tasks (written by an older harness)")
        elif self.to_redo:
            parts.append(f"{len(self.to_redo)} of {len(self.wanted)} conversations not finished")
        if self.damaged:
            parts.append(
                f"{len(self.damaged)} damaged line{'s' if len(self.damaged) > 1 else ''} in {CONVERSATIONS} "
                "(a rerun sets them aside and redoes them)"
            )
        return "; ".join(parts)


def job_progress(job_dir: Path, wanted: set[Key] | None = None) -> JobProgress:
    """Which of the job's (task, trial) pairs are finished, read from its conversations.

    `wanted` defaults to the pairs in the job's `job.json` (a damaged one raises `DamagedFile`).
    """
    if wanted is None:
        job = read_job_file(job_dir)
        wanted = job.wanted() if job else None
    path = JobDir(job_dir).conversations
    read = read_jsonl_records(path, RECORD_SCHEMA)
    return JobProgress(
        wanted=wanted,
        records=latest_by_key(cast(list[ConversationRecord], read.records)),
        damaged=read.bad,
        set_aside=quarantined_count(path),
    )


@dataclass(frozen=True)
class JobStatus:
    state: State
    detail: str
    """One line saying why (empty for a complete job)."""
    job: JobFile | None
    progress: JobProgress | None
    """None when job.json is damaged (the conversations cannot be placed)."""
    summary: Summary | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def _succeeded_since_error(directory: JobDir) -> bool:
    """A summary newer than error.txt: a later run succeeded (one not started by `python -m harness`,
    which removes error.txt as it starts)."""
    try:
        return directory.summary.stat().st_mtime > directory.error.stat().st_mtime
    except FileNotFoundError:
        return False


def job_state(job_dir: Path) -> JobStatus:
    """The job's state from its directory alone, first match wins:

    running (a run holds the job's lock), damaged (job.json unreadable, or damaged lines in
    conversations.jsonl), failed (the latest run left error.txt), not_started (no record yet),
    incomplete (wanted conversations without a final record, or no summary.json since they were
    written), accepted_incomplete (the summary accepted what is missing as final), complete.
    """
    directory = JobDir(job_dir)
    try:
        job = read_job_file(job_dir)
    except DamagedFile as error:
        running = directory.held()
        return JobStatus("running" if running else "damaged", str(error), None, None, None)
    progress = job_progress(job_dir, job.wanted() if job else None)
    summary = read_summary(job_dir)

    def status(state: State, detail: str) -> JobStatus:
        return JobStatus(state, detail, job, progress, summary)

    if directory.held():
        return status("running", f"{len(progress.finished)} conversations finished so far")
    if progress.damaged:
        return status("damaged", progress.describe())
    failure = directory.error_line()
    if failure is not None and not _succeeded_since_error(directory):
        return status("failed", failure)
    if summary is None:
        if not progress.records:
            return status("not_started", "no conversations yet")
        unfinished = progress.describe()
        return status("incomplete", f"{unfinished + '; ' if unfinished else ''}no summary.json (interrupted)")
    if summary.state == "accepted_incomplete":
        return status("accepted_incomplete", f"{summary.describe_missing()} (accepted as final)")
    if summary.state == "incomplete":
        return status("incomplete", summary.describe_missing())
    if progress.wanted is None:  # job.json written before it listed its tasks
        return (
            status("incomplete", f"{summary.missing} conversations missing")
            if summary.missing
            else status("complete", "")
        )
    if not progress.complete:
        return status("incomplete", progress.describe())
    return status("complete", "")
