"""Judgments on disk: `<job>/judgments/<judge>.jsonl`, one line per judged conversation.

`<judge>` is the hash of everything that defines a judgment (model, backend, sampling, prompt,
schema, limits), so a changed judge writes a separate set next to the old one instead of mixing
them; `<judge>.json` beside it says which judge it is. Each line is appended and fsynced as the
conversation is judged, so a killed judge loses nothing and a rerun judges only what is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import IO, Any

JUDGMENTS_DIR = "judgments"
REDO_ERRORS = frozenset({"unavailable", "crash"})
"""Judge errors of the infrastructure, judged again on a rerun (an invalid answer is a result)."""


def judgments_path(job_dir: Path, judge: str) -> Path:
    return job_dir / JUDGMENTS_DIR / f"{judge}.jsonl"


def judge_info_path(job_dir: Path, judge: str) -> Path:
    return job_dir / JUDGMENTS_DIR / f"{judge}.json"


def judge_sets(job_dir: Path) -> list[str]:
    """The judges that have judged conversations of this job."""
    return sorted(path.stem for path in (job_dir / JUDGMENTS_DIR).glob("*.jsonl"))


def read_judgments(path: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """The latest judgment of each (task, trial); a half-written last line and damaged lines are ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    latest = {}
    for line in data.split(b"\n")[:-1]:  # the last piece is empty, or a line still being written
        try:
            judgment = json.loads(line)
            latest[(int(judgment["task_id"]), int(judgment["trial"]))] = judgment
        except (ValueError, KeyError, TypeError):
            continue
    return latest


def is_done(judgment: dict[str, Any] | None, conversation: dict[str, Any]) -> bool:
    """Whether `judgment` judges this very conversation (not an earlier attempt of it) for good."""
    return (
        judgment is not None
        and judgment.get("conversation_started_at") == conversation.get("started_at")
        and judgment.get("error_kind") not in REDO_ERRORS
    )


class JudgmentLog:
    """Appends one judgment per line and returns once it is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb+") as file:
                content = file.read()
                if content and not content.endswith(b"\n"):
                    file.truncate(content.rfind(b"\n") + 1)
        self._file: IO[bytes] = path.open("ab")
        self._lock = asyncio.Lock()

    async def write(self, judgment: dict[str, Any]) -> None:
        line = json.dumps(judgment, ensure_ascii=False).encode() + b"\n"
        async with self._lock:
            await asyncio.to_thread(self._write, line)

    def _write(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
