"""JSON-lines logs: one append log and one tolerant reader, with one damage policy for every log.

A log (`conversations.jsonl`, `judgments/<judge>.jsonl`) is appended one line per finished item
and fsynced before the next. Reading keeps every line that is a JSON object valid under the
log's schema and lists the others (`BadLine`) by line number; a last line without its newline is
a torn tail (its writer was stopped, or is still writing). The log's one writer, on opening it,
moves the damaged lines and the torn tail to `<log>.quarantine` (nothing is deleted) and
rewrites the log without them; a reader never changes a file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

from pydantic import TypeAdapter, ValidationError

from harness.errors import HarnessError
from harness.store import lock
from harness.store.layout import quarantine_of

log = logging.getLogger(__name__)


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
    numbers: list[int] = field(default_factory=list)
    """The line number (from 1) of each record."""
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
    writer may ask for that, before it opens the file for append (`AppendLog` does).
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
            read.numbers.append(number)
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
    quarantine = quarantine_of(read.path)
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
    return json_line(entry)


def quarantined_count(path: Path) -> int:
    """How many lines of `path` were set aside so far (entries in `<path>.quarantine`)."""
    try:
        return quarantine_of(path).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


class AppendLog:
    """Appends one JSON line per finished item, on disk before `write` returns.

    Opening it sets aside damaged lines and a torn last line (see `read_jsonl_records`); it holds
    an exclusive lock on the log file, so that a second writer fails at once with a clear error.
    """

    def __init__(self, path: Path, schema: TypeAdapter[Any] | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")
        try:
            _lock_file(self._file, path)
            read_jsonl_records(path, schema, set_aside=True)
            # the set-aside rewrite replaced the file: write to (and lock) the new one
            if os.fstat(self._file.fileno()).st_ino != path.stat().st_ino:
                self._file.close()
                self._file = path.open("ab")
                _lock_file(self._file, path)
        except BaseException:
            self._file.close()
            raise
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def append(self, item: dict[str, Any]) -> None:
        self._write_lines([json_line(item)])

    async def write(self, item: Mapping[str, Any]) -> None:
        """Append `item` and return once it is on disk, without blocking the event loop.

        The write and fsync run in a worker thread; items that finish while one is in progress
        are written together after it, with one fsync for the batch.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((json_line(item), done))
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
        self._file.close()  # releases the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_file(file: IO[bytes], path: Path) -> None:
    """An exclusive flock on the open log; nothing where the filesystem has none (some NFS mounts)."""
    try:
        lock.lock_fd(file.fileno(), path, wait=False)
    except lock.Locked:
        raise HarnessError(
            f"another process is writing {path} (a run of the same job or judge); "
            "wait for it to end or stop it, then rerun"
        ) from None


def json_line(item: Mapping[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False).encode() + b"\n"
