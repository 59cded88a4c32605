"""`conversations.jsonl` is the source of truth; `results.json` and `summary.json` derive from it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

CONVERSATIONS = "conversations.jsonl"
RESULTS = "results.json"
SUMMARY = "summary.json"
JOB_FILE = "job.json"
ERROR_FILE = "error.txt"

Key = tuple[int, int]


def read_conversations(path: Path) -> list[dict[str, Any]]:
    """Every complete record in the file; a half-written last line is ignored."""
    if not path.exists():
        return []
    records = []
    with path.open("rb") as file:
        for line in file:
            if not line.endswith(b"\n"):
                break  # the job was killed while writing this line
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def latest_by_key(records: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The last record of each (task, trial): a rerun's retry replaces an infrastructure error."""
    latest: dict[Key, dict[str, Any]] = {}
    for record in records:
        latest[(record["task_id"], record["trial"])] = record
    return latest


class ConversationLog:
    """Appends one JSON line per finished conversation, flushed to disk before the next starts."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CONVERSATIONS
        directory.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()
        self._file: IO[bytes] = self.path.open("ab")
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def _drop_partial_tail(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as file:
            content = file.read()
            if content and not content.endswith(b"\n"):
                file.truncate(content.rfind(b"\n") + 1)

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
        self._file.write(b"".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ConversationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        }
        if record["error"]:
            info["error"] = record["error"]
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
