"""`conversations.jsonl` is the source of truth; `results.json` and `summary.json` derive from it."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from harness.episode.record import RECORD_SCHEMA
from harness.episode.types import Termination
from harness.errors import HarnessError

CONVERSATIONS = "conversations.jsonl"
RESULTS = "results.json"
SUMMARY = "summary.json"
JOB_FILE = "job.json"
ERROR_FILE = "error.txt"

Key = tuple[int, int]


QUARANTINE_SUFFIX = ".quarantine"
"""Lines set aside from `<file>` go to `<file>.quarantine` beside it, one JSON entry each."""

log = logging.getLogger(__name__)


class DamagedFile(HarnessError):
    """A file the harness wrote that no longer reads back; the message names it and the fix."""


@dataclass(frozen=True)
class BadLine:
    number: int
    """The line's number (from 1) in the file as it was read."""
    reason: str
    raw: bytes


@dataclass
class JsonlRead:
    """What one JSON-lines file holds: its good records and the lines that are not."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    torn_tail: bytes = b""
    """A last line without its newline: its writer was killed, or is still writing it."""
    lines: int = 0
    """Complete lines read (the torn tail, if any, is line `lines + 1`)."""
    good_lines: list[bytes] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """One line naming the damaged lines by reason, e.g. `lines 3, 9: not JSON`."""
        by_reason: dict[str, list[int]] = {}
        for bad in self.bad:
            by_reason.setdefault(bad.reason, []).append(bad.number)
        parts = []
        for reason, numbers in by_reason.items():
            shown = ", ".join(map(str, numbers[:5])) + (
                f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
            )
            parts.append(f"line{'s' if len(numbers) > 1 else ''} {shown}: {reason}")
        return f"{self.path}: {len(self.bad)} damaged line{'s' if len(self.bad) != 1 else ''} ({'; '.join(parts)})"


def read_jsonl_records(
    path: Path, schema: TypeAdapter[Any] | None = None, set_aside: bool = False
) -> JsonlRead:
    """Every line of `path` that is a JSON object (valid under `schema`, strictly, when given).

    Lines that do not decode as UTF-8, are not JSON objects or fail the schema are returned as
    `bad` with their line numbers. With `set_aside`, they (and a torn last line) are moved to
    `<path>.quarantine` and `path` is rewritten without them, atomically: only the file's one
    writer may ask for that, before it opens the file for append (`ConversationLog` does).
    """
    read = JsonlRead(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return read
    lines = data.split(b"\n")
    read.torn_tail = lines.pop()  # b"" when the file ends with a newline
    read.lines = len(lines)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        problem, value = _parse_line(raw, schema)
        if problem:
            read.bad.append(BadLine(number, problem, raw))
        else:
            read.records.append(value)
            read.good_lines.append(raw + b"\n")
    if set_aside and (read.bad or read.torn_tail):
        _set_aside(read)
    return read


def _parse_line(raw: bytes, schema: TypeAdapter[Any] | None) -> tuple[str, Any]:
    """(problem, value): an empty problem when the line is good."""
    if b"\0" in raw:
        return "NUL bytes (a crashed write)", None
    try:
        value = json.loads(raw.decode())
    except UnicodeDecodeError:
        return "not UTF-8", None
    except json.JSONDecodeError:
        return "not JSON (a torn or joined line)", None
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object", None
    if schema is not None:
        try:
            schema.validate_json(raw, strict=True)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            return f"not a record ({where}: {first['msg']})", None
    return "", value


def _set_aside(read: JsonlRead) -> None:
    quarantine = read.path.with_name(read.path.name + QUARANTINE_SUFFIX)
    moved = [*read.bad]
    if read.torn_tail:
        moved.append(BadLine(read.lines + 1, "unfinished last line", read.torn_tail))
    when = datetime.now(UTC).isoformat(timespec="seconds")
    entries = [_quarantine_entry(read.path.name, bad, when) for bad in moved]
    with quarantine.open("ab") as file:
        file.write(b"".join(entries))
        file.flush()
        os.fsync(file.fileno())
    tmp = read.path.with_name(read.path.name + ".tmp")
    try:
        with tmp.open("wb") as file:
            file.write(b"".join(read.good_lines))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, read.path)
    finally:
        tmp.unlink(missing_ok=True)
    if read.bad:
        log.warning("%s; moved to %s (nothing is deleted)", read.describe(), quarantine)
    else:
        log.info("%s: its unfinished last line (from a stopped writer) is moved to %s", read.path, quarantine)


def _quarantine_entry(source: str, bad: BadLine, when: str) -> bytes:
    entry: dict[str, Any] = {"file": source, "line": bad.number, "reason": bad.reason, "set_aside_at": when}
    try:
        entry["text"] = bad.raw.decode()
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(bad.raw).decode()
    return _line(entry)


def quarantined_count(path: Path) -> int:
    """How many lines of `path` were set aside so far (entries in `<path>.quarantine`)."""
    quarantine = path.with_name(path.name + QUARANTINE_SUFFIX)
    try:
        return quarantine.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def read_conversations(path: Path) -> list[dict[str, Any]]:
    """Every good record in the file; damaged lines and a half-written last line are left out."""
    return read_jsonl_records(path, RECORD_SCHEMA).records


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when there is no such file, `DamagedFile` when it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DamagedFile(f"cannot read {path}: {error.strerror}") from None
    try:
        value = json.loads(data.decode())
    except UnicodeDecodeError:
        raise DamagedFile(f"{path} is damaged (not UTF-8)") from None
    except json.JSONDecodeError as error:
        raise DamagedFile(f"{path} is damaged (not JSON: {error.msg} at line {error.lineno})") from None
    if not isinstance(value, dict):
        raise DamagedFile(f"{path} is damaged (a JSON {type(value).__name__}, not an object)")
    return value


class JobFile(BaseModel):
    """`job.json`: what defines the job's results, its facts, and the (task, trial) pairs it wants."""

    fingerprint: dict[str, Any]
    info: dict[str, Any]
    tasks: list[int] | None = None
    """The task ids of the latest run (absent in jobs written by harness versions before 0.2)."""
    trials: int | None = None
    study: dict[str, Any] | None = None
    """The sweep's declared estimand (`harness.job.study.Study`); None: none declared."""

    def wanted(self) -> set[Key] | None:
        if self.tasks is None or self.trials is None:
            return None
        return {(task, trial) for trial in range(self.trials) for task in self.tasks}


def find_job_dirs(root: Path) -> list[Path]:
    """Every directory at or under `root` that holds a job: a job.json, conversations or an error."""
    found = {path.parent for marker in (JOB_FILE, CONVERSATIONS, ERROR_FILE) for path in root.rglob(marker)}
    return sorted(found)


def read_job_file(job_dir: Path) -> JobFile | None:
    """The job's `job.json`, None when absent; a damaged one is a `DamagedFile` naming the fix."""
    path = job_dir / JOB_FILE
    fix = (
        f"move it away (mv {path} {path}.damaged) and rerun the job's command to rewrite it; "
        "its finished conversations are kept"
    )
    try:
        value = read_json_object(path)
        return None if value is None else JobFile.model_validate(value)
    except DamagedFile as error:
        raise DamagedFile(f"{error}: {fix}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DamagedFile(f"{path} is damaged ({where}: {first['msg']}): {fix}") from None


@dataclass(frozen=True)
class JobProgress:
    """How far a job got, from the records on disk (never from `summary.json`)."""

    wanted: set[Key] | None
    """The (task, trial) pairs the job's latest run asked for; None when job.json does not say."""
    records: dict[Key, dict[str, Any]]
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
    read = read_jsonl_records(job_dir / CONVERSATIONS, RECORD_SCHEMA)
    return JobProgress(
        wanted=wanted,
        records=latest_by_key(read.records),
        damaged=read.bad,
        set_aside=quarantined_count(job_dir / CONVERSATIONS),
    )


def latest_by_key(records: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The last record of each (task, trial): a rerun's retry replaces an infrastructure error."""
    latest: dict[Key, dict[str, Any]] = {}
    for record in records:
        latest[(record["task_id"], record["trial"])] = record
    return latest


class ConversationLog:
    """Appends one JSON line per finished conversation, flushed to disk before the next starts.

    Opening it sets aside damaged lines and a torn last line (see `read_jsonl_records`); it holds
    a lock on the directory so that a second run of the same job cannot append at the same time.
    """

    def __init__(
        self, directory: Path, name: str = CONVERSATIONS, schema: TypeAdapter[Any] | None = RECORD_SCHEMA
    ) -> None:
        self.path = directory / name
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_directory(directory)
        try:
            read_jsonl_records(self.path, schema, set_aside=True)
            self._file: IO[bytes] = self.path.open("ab")
        except BaseException:
            self._unlock()
            raise
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def append(self, record: dict[str, Any]) -> None:
        self._write_lines([_line(record)])

    async def write(self, record: dict[str, Any]) -> None:
        """Append `record` and return once it is on disk, without blocking the event loop.

        The write and fsync run in a worker thread; records that finish while one is in
        progress are written together after it, with one fsync for the batch.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((_line(record), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self._write_lines, [line for line, _ in batch])
            except BaseException as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                if not isinstance(error, Exception):
                    raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _write_lines(self, lines: list[bytes]) -> None:
        try:
            self._file.write(b"".join(lines))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            if error.filename is None:  # a failed write does not say which file
                raise OSError(error.errno, error.strerror, str(self.path)) from error
            raise

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def __enter__(self) -> ConversationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_directory(directory: Path) -> int | None:
    """An exclusive flock on `directory`; None where the filesystem has none (some NFS mounts).

    The lock is per directory, so a judge writing its own file there holds it while it writes.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise HarnessError(
            f"another process is running the job in {directory} (it holds its {CONVERSATIONS}); "
            "wait for it to end or stop it, then rerun"
        ) from None
    except OSError:
        os.close(fd)
        return None
    return fd


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def taubench_results(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """τ-bench's `EnvRunResult` list: task_id, reward, info, traj, trial."""
    results = []
    for record in records:
        info: dict[str, Any] = {
            "task": {
                "user_id": record["user_id"],
                "instruction": record["instruction"],
                "actions": (record["reward_info"] or {}).get("actions", []),
            },
            "source": "user" if record["termination"] == "user_stop" else None,
            "user_cost": 0.0,
            "reward_info": record["reward_info"],
            "termination": record["termination"],
            "variant": record["variant"],
            "scored": record["scored"],
        }
        if record["error"]:
            info["error"] = record["error"]
        if not record["scored"]:
            info["counting"] = "unscored: reward 0 here; left out of summary.json's average_reward"
        results.append(
            {
                "task_id": record["task_id"],
                "reward": record["reward"],
                "info": info,
                "traj": record["messages"],
                "trial": record["trial"],
            }
        )
    return results


def write_json(path: Path, value: Any) -> None:
    """Write atomically, so a killed job never leaves a truncated file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
